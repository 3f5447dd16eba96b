"""The worker's loop order and failure paths, with fake Kafka clients: commit only after the work is done."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kafka.errors import KafkaTimeoutError

from consumers.worker.dead_letter import DeadLetter
from consumers.worker.worker import ProduceFailed, RecommendationWorker
from streamrec.events import PageView, encode_event
from streamrec.settings import Settings
from tests.fake_kafka import FakeConsumer, FakePipeline, FakeProducer, records


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
    worker.handle_batch(records([GOOD, b"garbage", GOOD]))
    assert calls == ["prepare", "send:events.dlq", "send:notifications", "send:notifications", "flush", "confirm",
                     "commit_async"]
    (offsets,) = consumer.committed
    assert [o.offset for o in offsets.values()] == [13]  # one past the last record, the dead letter included


def test_without_a_producer_factory_a_failed_produce_stops_the_worker_without_committing():
    calls: list[str] = []
    worker, consumer, _ = _worker(calls, produce_error=KafkaTimeoutError("broker gone"))
    with pytest.raises(ProduceFailed):
        worker.handle_batch(records([GOOD]))
    assert consumer.committed == []
    assert "confirm" not in calls  # Redis is not told a notification went out


def test_a_processing_bug_is_retried_then_isolated_and_dead_lettered():
    calls: list[str] = []
    worker, consumer, producer = _worker(calls, pipeline_error=ValueError("bad model"))
    worker.handle_batch(records([GOOD, GOOD]))
    assert calls.count("prepare") == 2 + 2  # the batch twice (one retry), then each event alone
    assert [topic for topic, _ in producer.sent] == ["events.dlq", "events.dlq"]
    assert b"bad model" in producer.sent[0][1]
    assert len(consumer.committed) == 1  # dead-lettered records are done: the stream moves on


def test_an_event_stamped_far_in_the_future_is_dead_lettered_at_decode():
    calls: list[str] = []
    worker, consumer, producer = _worker(calls)
    far = PageView(user_id="u", session_id="s", item_id="p9", ts=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    ancient = PageView(user_id="u", session_id="s", item_id="p9", ts=datetime(1990, 1, 1, tzinfo=UTC))
    notifications = worker.handle_batch(records([encode_event(far), GOOD, encode_event(ancient)]))
    assert len(notifications) == 1  # only the event with a sane time reached the pipeline
    letters = [DeadLetter.model_validate_json(value) for topic, value in producer.sent if topic == "events.dlq"]
    assert [(d.stage, d.source_offset) for d in letters] == [("decode", 10), ("decode", 12)]
    assert "ahead of receipt" in letters[0].reason and "earliest" in letters[1].reason
    assert [o.offset for o in consumer.committed[0].values()] == [13]
