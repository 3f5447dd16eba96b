"""Webhook delivery against a local receiver: signed, retried with backoff on failures, final on client errors."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from consumers.notifier.dispatcher import NotificationDispatcher
from consumers.notifier.fatigue import FatigueRules
from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.push_queue import PushQueue
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.webhook import WebhookSender, verify_signature
from streamrec.events import utc_now
from streamrec.notifications import Notification, RecommendedItem, notification_id_for

pytestmark = pytest.mark.integration
SECRET = "webhook-secret"


class Receiver:
    """Answers with the scripted statuses in turn (the last one repeats) and records every request."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests.append((headers, body))
            return self.statuses[min(len(self.requests), len(self.statuses)) - 1]


@contextmanager
def local_receiver(statuses: list[int]) -> Iterator[tuple[str, Receiver]]:
    receiver = Receiver(statuses)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = receiver.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/streamrec", receiver
    finally:
        server.shutdown()
        server.server_close()


def dispatcher(settings, url: str, delays: list[float], max_attempts: int = 4) -> NotificationDispatcher:
    options = NotifierSettings(max_per_hour=0, max_per_day=0, min_interval_s=0, repeat_window_s=0, max_age_s=0)

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        time.sleep(seconds)

    sender = WebhookSender(url, SECRET, max_attempts=max_attempts, backoff_s=0.05, backoff_max_s=1.0, timeout_s=5,
                           sleep=sleep)
    queue = PushQueue(redis.Redis.from_url(settings.redis_url), settings.key_prefix, options)
    return NotificationDispatcher(queue, FatigueRules.from_settings(options), NotifierMetrics(), sender)


def notification(user: str = "hook-user") -> Notification:
    trigger = uuid.uuid4().hex
    return Notification(
        notification_id=notification_id_for(trigger), user_id=user, session_id="s",
        items=[RecommendedItem(item_id="tent", score=0.9)], model_name="m", model_version="1", reason="r",
        trigger_event_id=trigger, trigger_event_type="purchase", trigger_ts=utc_now(),
    )


def test_failures_are_retried_with_growing_backoff_until_the_receiver_takes_it(settings):
    delays: list[float] = []
    with local_receiver([503, 502, 200]) as (url, receiver):
        d = dispatcher(settings, url, delays)
        sent = notification()
        outcome = d.dispatch_batch([sent])[0]
        d.close()
    assert outcome.status == "queued" and outcome.webhook_delivered is True
    assert len(receiver.requests) == 3
    assert delays[1] > delays[0]  # exponential backoff (jitter is at most 20%)
    for attempt, (headers, body) in enumerate(receiver.requests, start=1):
        assert headers["x-streamrec-attempt"] == str(attempt)
        assert headers["x-streamrec-notification-id"] == sent.notification_id
        assert verify_signature(SECRET, headers["x-streamrec-timestamp"], body, headers["x-streamrec-signature"])
        assert not verify_signature("other-secret", headers["x-streamrec-timestamp"], body,
                                    headers["x-streamrec-signature"])
    assert json.loads(receiver.requests[-1][1])["notification_id"] == sent.notification_id
    assert d.metrics.value("streamrec_notifier_webhook_deliveries_total", outcome="delivered") == 1
    assert d.metrics.value("streamrec_notifier_webhook_attempts_total") == 3


def test_a_receiver_that_keeps_failing_is_given_up_on_counted_and_the_push_still_queued(settings):
    delays: list[float] = []
    with local_receiver([500]) as (url, receiver):
        d = dispatcher(settings, url, delays, max_attempts=3)
        outcome = d.dispatch_batch([notification()])[0]
        d.close()
    assert outcome.webhook_delivered is False
    assert len(receiver.requests) == 3
    assert outcome.status == "queued"  # the SSE path does not depend on the webhook
    assert d.metrics.value("streamrec_notifier_webhook_deliveries_total", outcome="failed") == 1


def test_a_client_error_is_final_and_not_retried(settings):
    with local_receiver([400]) as (url, receiver):
        d = dispatcher(settings, url, [])
        outcome = d.dispatch_batch([notification()])[0]
        d.close()
    assert outcome.webhook_delivered is False
    assert len(receiver.requests) == 1


def test_an_unreachable_receiver_is_retried_then_counted(settings):
    with local_receiver([200]) as (url, _receiver):
        pass  # the server is gone: connection refused
    d = dispatcher(settings, url, [], max_attempts=2)
    outcome = d.dispatch_batch([notification()])[0]
    d.close()
    assert outcome.webhook_delivered is False
    assert d.metrics.value("streamrec_notifier_webhook_attempts_total") == 2
