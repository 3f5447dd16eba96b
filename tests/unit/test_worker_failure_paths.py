"""The worker's loop order and failure paths, with fake Kafka clients: commit only after the work is done."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import redis
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError

from consumers.worker import ProduceFailed, RecommendationWorker
from streamrec.events import PageView, encode_event
from streamrec.notifications import Notification, RecommendedItem
from streamrec.settings import Settings


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error:
            raise self.error


@dataclass
class FakeProducer:
    calls: list[str]
    fail_with: Exception | None = None
    sent: list[tuple[str, bytes]] = field(default_factory=list)

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> FakeFuture:
        self.calls.append(f"send:{topic}")
        self.sent.append((topic, value))
        return FakeFuture(self.fail_with)

    def flush(self, timeout: float | None = None) -> None:
        self.calls.append("flush")

    def close(self, timeout: float | None = None) -> None:
        self.calls.append("producer.close")


@dataclass
class FakeConsumer:
    calls: list[str]
    committed: list[dict] = field(default_factory=list)

    def commit(self, offsets: dict) -> None:
        self.calls.append("commit")
        self.committed.append(offsets)

    def close(self) -> None:
        self.calls.append("consumer.close")


class FakePipeline:
    """Turns every page view into one notification, or raises what it is told to."""

    def __init__(self, calls: list[str], raise_error: Exception | None = None) -> None:
        self.calls = calls
        self.raise_error = raise_error

    def prepare(self, events):
        self.calls.append("prepare")
        if self.raise_error:
            raise self.raise_error
        return [
            Notification(notification_id=e.event_id, user_id=e.user_id, session_id=e.session_id,
                         items=[RecommendedItem(item_id="p1", score=1.0)], model_name="fake", model_version="0",
                         reason="test", trigger_event_id=e.event_id, trigger_event_type=e.type, trigger_ts=e.ts)
            for e in events
        ]

    def confirm(self, notifications) -> None:
        self.calls.append("confirm")


def _records(values: list[bytes]) -> list[ConsumerRecord]:
    return [
        ConsumerRecord(topic="events", partition=0, leader_epoch=-1, offset=offset, timestamp=0, timestamp_type=0,
                       key=b"u", value=value, headers=[], checksum=None, serialized_key_size=1,
                       serialized_value_size=len(value), serialized_header_size=-1)
        for offset, value in enumerate(values, start=10)
    ]


def _worker(calls, pipeline_error=None, produce_error=None):
    settings = Settings(processing_retries=1)
    producer = FakeProducer(calls, produce_error)
    consumer = FakeConsumer(calls)
    worker = RecommendationWorker(settings, FakePipeline(calls, pipeline_error), consumer, producer)
    return worker, consumer, producer


GOOD = encode_event(PageView(user_id="u", session_id="s", item_id="p9"))


def test_a_batch_is_committed_only_after_notifications_are_flushed_and_recorded():
    calls: list[str] = []
    worker, consumer, _ = _worker(calls)
    worker.handle_batch(_records([GOOD, b"garbage", GOOD]))
    assert calls == ["send:events.dlq", "prepare", "send:notifications", "send:notifications", "flush", "confirm",
                     "commit"]
    (offsets,) = consumer.committed
    assert [o.offset for o in offsets.values()] == [13]  # one past the last record, the dead letter included


def test_a_failed_produce_stops_the_worker_without_committing():
    calls: list[str] = []
    worker, consumer, _ = _worker(calls, produce_error=KafkaTimeoutError("broker gone"))
    with pytest.raises(ProduceFailed):
        worker.handle_batch(_records([GOOD]))
    assert consumer.committed == []
    assert "confirm" not in calls  # Redis is not told a notification went out


def test_redis_down_is_not_dead_lettered_and_nothing_is_committed():
    calls: list[str] = []
    worker, consumer, producer = _worker(calls, pipeline_error=redis.exceptions.ConnectionError("refused"))
    with pytest.raises(redis.exceptions.ConnectionError):
        worker.handle_batch(_records([GOOD, GOOD]))
    assert consumer.committed == []
    assert producer.sent == []


def test_a_processing_bug_is_retried_then_isolated_and_dead_lettered():
    calls: list[str] = []
    worker, consumer, producer = _worker(calls, pipeline_error=ValueError("bad model"))
    worker.handle_batch(_records([GOOD, GOOD]))
    assert calls.count("prepare") == 2 + 2  # the batch twice (one retry), then each event alone
    assert [topic for topic, _ in producer.sent] == ["events.dlq", "events.dlq"]
    assert b"bad model" in producer.sent[0][1]
    assert len(consumer.committed) == 1  # dead-lettered records are done: the stream moves on
