"""Webhook retry policy, without a network: Retry-After is honoured, backoff doubles, client errors are final."""

from __future__ import annotations

import httpx

from consumers.notifier.webhook import WebhookSender, sign, verify_signature


def sender(statuses: list[tuple[int, dict[str, str]]], delays: list[float], attempts: int = 5) -> WebhookSender:
    answers = iter(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        status, headers = next(answers)
        return httpx.Response(status, headers=headers)

    return WebhookSender("http://127.0.0.1:9/hook", "k", attempts, backoff_s=1.0, backoff_max_s=30.0, timeout_s=1,
                         sleep=delays.append, client=httpx.Client(transport=httpx.MockTransport(handle)))


def test_retry_after_from_the_receiver_sets_the_wait():
    delays: list[float] = []
    result = sender([(429, {"Retry-After": "7"}), (200, {})], delays).send("n1", b"{}")
    assert result.delivered and result.attempts == 2
    assert delays == [7.0]


def test_backoff_doubles_with_bounded_jitter_and_gives_up_after_max_attempts():
    delays: list[float] = []
    result = sender([(503, {})] * 4, delays, attempts=4).send("n1", b"{}")
    assert not result.delivered and result.attempts == 4 and result.last_error == "HTTP 503"
    for attempt, delay in enumerate(delays):
        assert 0.8 * 2**attempt <= delay <= 1.2 * 2**attempt


def test_client_errors_other_than_throttling_are_not_retried():
    delays: list[float] = []
    result = sender([(410, {})], delays).send("n1", b"{}")
    assert not result.delivered and result.attempts == 1 and delays == []


def test_signatures_bind_timestamp_and_body():
    header = sign("k", 1700000000, b'{"a":1}')
    assert verify_signature("k", "1700000000", b'{"a":1}', header)
    assert not verify_signature("k", "1700000001", b'{"a":1}', header)
    assert not verify_signature("k", "1700000000", b'{"a":2}', header)
    assert not verify_signature("k", "not-a-number", b'{"a":1}', header)
