"""The Kafka loop's outage handling without servers: retries with bounded backoff, partitions paused and
resumed, the outage reported while it lasts, and a non-outage error still stops the loop."""

from __future__ import annotations

import threading

import pytest
import redis
from kafka import TopicPartition

from consumers.notifier.consumer_loop import NotifierConsumer, _Stopped
from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.settings import NotifierSettings
from streamrec.settings import Settings

TP = TopicPartition("notifications", 0)


class FakeConsumer:
    def __init__(self) -> None:
        self.paused: set = set()
        self.pause_calls = self.resume_calls = 0
        self.poll_timeouts: list[int] = []

    def assignment(self) -> set:
        return {TP}

    def pause(self, *partitions) -> None:
        self.pause_calls += 1
        self.paused |= set(partitions)

    def resume(self, *partitions) -> None:
        self.resume_calls += 1
        self.paused -= set(partitions)

    def poll(self, timeout_ms: int = 0) -> dict:
        self.poll_timeouts.append(timeout_ms)
        return {}


class FakeDispatcher:
    metrics = NotifierMetrics()


def make_loop() -> tuple[NotifierConsumer, FakeConsumer]:
    consumer = FakeConsumer()
    settings = Settings(outage_backoff_s=0.01, outage_backoff_max_s=0.04)
    return NotifierConsumer(settings, NotifierSettings(), FakeDispatcher(), consumer=consumer), consumer


def test_an_outage_is_retried_with_bounded_backoff_while_partitions_stay_paused():
    loop, consumer = make_loop()
    failures = [redis.exceptions.ConnectionError("refused")] * 3 + [redis.exceptions.TimeoutError("slow")] * 2
    seen_during: list[str | None] = []

    def action() -> str:
        seen_during.append(loop.outage)
        if failures:
            raise failures.pop(0)
        return "done"

    assert loop.through_outages(action, threading.Event(), "a test batch") == "done"
    assert seen_during[0] is None and all(seen_during[1:])  # reported from the first failure on
    assert loop.outage is None and loop.metrics.value("streamrec_notifier_outage") == 0
    assert consumer.paused == set() and consumer.resume_calls == consumer.pause_calls == 5
    assert max(consumer.poll_timeouts) <= 40  # never longer than outage_backoff_max_s


def test_stopping_during_an_outage_leaves_without_committing():
    loop, _ = make_loop()
    stop = threading.Event()

    def action() -> None:
        stop.set()
        raise redis.exceptions.ConnectionError("refused")

    with pytest.raises(_Stopped):  # run() catches it and closes without a commit
        loop.through_outages(action, stop, "a test batch")


def test_an_error_that_is_not_an_outage_is_not_retried():
    loop, _ = make_loop()
    calls = []

    def action() -> None:
        calls.append(1)
        raise redis.exceptions.ResponseError("ERR Invalid stream ID")

    with pytest.raises(redis.exceptions.ResponseError):
        loop.through_outages(action, threading.Event(), "a test batch")
    assert calls == [1]
