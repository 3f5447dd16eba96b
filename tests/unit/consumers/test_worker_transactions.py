"""Exactly-once delivery: a batch's dead letters, notifications and offsets commit in one transaction.

Fake clients record the worker's calls: Redis is written first, the transaction commits the output and the
offsets together (never a consumer commit), the notifications are recorded in Redis only after the commit,
and a failed transaction is aborted and redone whole (on a new producer when it cannot even abort).
"""

from __future__ import annotations

from kafka import TopicPartition
from kafka.errors import KafkaConnectionError, ProducerFencedError

from consumers.worker.worker import RecommendationWorker
from streamrec.events import PageView, encode_event
from streamrec.notifications import decode_notification
from streamrec.settings import Settings
from tests.fake_kafka import FakeConsumer, FakePipeline, FakeTransactionalProducer, records

EXACTLY_ONCE = Settings(delivery="exactly-once", outage_backoff_s=0.001, outage_backoff_max_s=0.004)


def _event(user: str) -> bytes:
    return encode_event(PageView(user_id=user, session_id=f"{user}-s", item_id="p9"))


def _worker(calls, producer, factory=None, consumer=None):
    consumer = consumer or FakeConsumer(calls)
    pipeline = FakePipeline(calls)
    worker = RecommendationWorker(EXACTLY_ONCE, pipeline, consumer, producer,
                                  producer_factory=factory or (lambda: producer))
    pipeline.worker = worker
    return worker, consumer


def test_output_and_offsets_commit_in_one_transaction_then_redis_records_it():
    calls: list[str] = []
    producer = FakeTransactionalProducer(calls)
    worker, consumer = _worker(calls, producer)
    worker.handle_batch(records([_event("a"), b"not json"]))

    assert calls == ["prepare", "begin", "send:events.dlq", "send:notifications", "send_offsets",
                     "commit_transaction", "confirm"]
    assert consumer.committed == []  # offsets go through the transaction only
    assert [topic for topic, _ in producer.committed[0]] == ["events.dlq", "notifications"]
    (offsets,) = producer.offsets
    assert offsets[TopicPartition("events", 0)].offset == 12  # one past both records, the dead letter's too


def test_a_failed_commit_aborts_and_the_batch_is_redone_whole_before_redis_hears_of_it():
    calls: list[str] = []
    producer = FakeTransactionalProducer(calls, commit_errors=[KafkaConnectionError("broker gone")])
    worker, _ = _worker(calls, producer)
    worker.handle_batch(records([_event("a")]))

    assert calls.index("abort") < calls.index("confirm")
    assert calls.count("begin") == 2 and calls.count("commit_transaction") == 2
    assert len(producer.committed) == 1, "only the redone transaction committed"
    assert calls[-1] == "confirm" and calls.count("confirm") == 1


def test_a_producer_that_cannot_abort_is_replaced_and_the_transaction_redone_on_the_new_one():
    calls: list[str] = []
    fenced = FakeTransactionalProducer(calls, name="old", commit_errors=[ProducerFencedError()],
                                       abort_error=ProducerFencedError())
    fresh = FakeTransactionalProducer(calls, name="new")
    worker, _ = _worker(calls, fenced, factory=lambda: fresh)
    worker.handle_batch(records([_event("a")]))

    assert fenced.committed == [] and len(fresh.committed) == 1
    assert worker.producers_rebuilt == 1


def test_partitions_revoked_during_a_retry_are_left_to_their_new_owner():
    calls: list[str] = []
    producer = FakeTransactionalProducer(calls, commit_errors=[KafkaConnectionError("broker gone")])
    consumer = FakeConsumer(calls, partitions={TopicPartition("events", 0), TopicPartition("events", 1)})
    worker, _ = _worker(calls, producer, consumer=consumer)

    def lose_partition_1() -> None:  # a rebalance while the worker waits out the failed commit
        worker.revoked.add(TopicPartition("events", 1))

    consumer.on_poll = lose_partition_1
    batch = records([_event("kept")], partition=0) + records([_event("moved")], partition=1)
    worker.handle_batch(batch)

    (committed,) = producer.committed
    users = [decode_notification(value).user_id for topic, value in committed if topic == "notifications"]
    assert users == ["kept"]
    assert list(producer.offsets[-1]) == [TopicPartition("events", 0)]
