"""Outages are waited out, never exited on: Redis down, a producer in a fatal state, a failing commit.

Fake clients record the worker's calls, so the order is checked: nothing is committed during an outage,
readiness is cleared then set again, partitions are paused and polled (the group keeps us), then resumed.
"""

from __future__ import annotations

import threading

import redis
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError, KafkaTimeoutError

from consumers.worker.worker import RecommendationWorker
from streamrec.events import PageView, encode_event
from streamrec.settings import Settings
from tests.fake_kafka import FakeConsumer, FakePipeline, FakeProducer, records

GOOD = encode_event(PageView(user_id="u", session_id="s", item_id="p9"))
FAST = Settings(processing_retries=1, outage_backoff_s=0.001, outage_backoff_max_s=0.004)


def _worker(calls, pipeline, producer=None, factory=None, consumer=None):
    consumer = consumer or FakeConsumer(calls)
    worker = RecommendationWorker(FAST, pipeline, consumer, producer or FakeProducer(calls), producer_factory=factory)
    pipeline.worker = worker
    worker.ready.set()  # partitions were assigned before the outage
    return worker, consumer


def test_redis_down_pauses_the_batch_commits_nothing_and_resumes_when_it_answers():
    calls: list[str] = []
    down = [redis.exceptions.ConnectionError("refused"), redis.exceptions.TimeoutError("stalled"),
            redis.exceptions.ConnectionError("refused")]
    pipeline = FakePipeline(calls, errors=down)
    worker, consumer = _worker(calls, pipeline)
    notifications = worker.handle_batch(records([GOOD, GOOD]))

    assert len(notifications) == 2
    assert calls == ["prepare", "pause", "poll", "prepare", "poll", "prepare", "poll", "prepare", "resume",
                     "send:notifications", "send:notifications", "flush", "confirm", "commit_async"]
    assert pipeline.observe_ready == [True, False, False]  # cleared at the first failure, until recovery
    assert worker.ready.is_set()
    assert worker.outages == 1 and len(consumer.committed) == 1
    assert consumer.paused == set()


def test_healthy_events_are_not_dead_lettered_when_redis_fails_during_isolation():
    calls: list[str] = []
    pipeline = FakePipeline(calls, errors=[ValueError("bug"), ValueError("bug"), ValueError("bug"),
                                           redis.exceptions.ConnectionError("refused")])
    worker, consumer = _worker(calls, pipeline)
    producer = worker.producer
    worker.handle_batch(records([GOOD, GOOD]))
    letters = [topic for topic, _ in producer.sent if topic == "events.dlq"]
    assert letters == []  # the first event's letter was dropped with the attempt; the retry then succeeded
    assert len(consumer.committed) == 1


def test_confirm_failing_after_the_produce_is_retried_without_producing_again():
    calls: list[str] = []
    pipeline = FakePipeline(calls, confirm_errors=[redis.exceptions.TimeoutError("stalled")])
    worker, consumer = _worker(calls, pipeline)
    worker.handle_batch(records([GOOD]))
    assert calls == ["prepare", "send:notifications", "flush", "confirm", "pause", "poll", "confirm", "resume",
                     "commit_async"]


def test_a_stop_during_an_outage_leaves_the_batch_uncommitted():
    calls: list[str] = []
    pipeline = FakePipeline(calls, errors=[redis.exceptions.ConnectionError("refused")] * 1000)
    stop = threading.Event()
    consumer = FakeConsumer(calls, on_poll=lambda: calls.count("prepare") >= 3 and stop.set(),
                            to_poll=[{TopicPartition("events", 0): records([GOOD])}])
    worker, _ = _worker(calls, pipeline, consumer=consumer)
    worker.run(stop)  # returns: SIGTERM during an outage drains nothing and exits cleanly
    assert consumer.committed == []
    assert calls[-2:] == ["consumer.close", "producer.close"]


def test_a_producer_in_a_fatal_state_is_rebuilt_and_the_batch_produced_again():
    calls: list[str] = []
    broken = FakeProducer(calls, fail_with=KafkaTimeoutError("InitProducerId: UnknownError"), name="broken")
    attempts = iter([KafkaConnectionError("no broker"), FakeProducer(calls, name="fresh")])

    def factory():
        made = next(attempts)
        if isinstance(made, Exception):
            calls.append("factory failed")
            raise made
        calls.append("factory")
        return made

    pipeline = FakePipeline(calls)
    worker, consumer = _worker(calls, pipeline, producer=broken, factory=factory)
    worker.handle_batch(records([GOOD, b"garbage"]))
    assert calls == [
        "prepare", "send:events.dlq", "send:notifications", "flush", "broken.close", "pause", "poll",
        "factory failed", "poll", "factory", "send:events.dlq", "send:notifications", "flush", "resume",
        "confirm", "commit_async",
    ]
    assert worker.producers_rebuilt == 1 and worker.dead_letters.count == 1  # one letter, produced twice
    assert len(consumer.committed) == 1


def test_a_synchronous_commit_failing_with_a_broker_error_is_retried():
    calls: list[str] = []
    consumer = FakeConsumer(calls, commit_errors=[KafkaConnectionError("coordinator gone")])
    worker = RecommendationWorker(FAST.model_copy(update={"commit_mode": "sync"}), FakePipeline(calls), consumer,
                                  FakeProducer(calls))
    worker.ready.set()
    worker.handle_batch(records([GOOD]))
    assert calls[-5:] == ["commit", "pause", "poll", "commit", "resume"]
    assert len(consumer.committed) == 1 and worker.committed_records == 1


def _run_until(worker: RecommendationWorker, done, polls: int = 50) -> None:
    """Run the worker's loop on its fake consumer until `done()` (or `polls` polls), then stop it."""
    stop = threading.Event()
    consumer = worker.consumer
    seen = [0]

    def on_poll():
        seen[0] += 1
        if done() or seen[0] >= polls:
            stop.set()

    consumer.on_poll = on_poll
    worker.run(stop)


def test_an_async_commit_that_fails_is_sent_again_while_the_loop_is_idle_and_counted_once_acknowledged():
    calls: list[str] = []
    consumer = FakeConsumer(calls, commit_errors=[KafkaConnectionError("coordinator gone")],
                            to_poll=[{TopicPartition("events", 0): records([GOOD, GOOD])}])
    worker, _ = _worker(calls, FakePipeline(calls), consumer=consumer)
    _run_until(worker, lambda: worker.committed_records == 2)
    assert calls.count("commit_async") == 2, calls  # the batch's, then the idle loop's re-send
    assert worker.commits.failures == 1 and worker.committed_records == 2
    (offsets,) = consumer.committed
    assert [o.offset for o in offsets.values()] == [12]
    assert worker.commits.unacknowledged == {}


def test_the_batch_is_not_waited_for_but_its_offsets_are_committed_synchronously_at_close():
    calls: list[str] = []
    consumer = FakeConsumer(calls, commit_errors=[KafkaConnectionError("lost")])
    worker, _ = _worker(calls, FakePipeline(calls), consumer=consumer)
    worker.handle_batch(records([GOOD, GOOD, GOOD]))
    assert calls[-1] == "commit_async" and consumer.committed == []  # sent, failed, the loop went on
    worker.close()
    assert calls.index("commit") < calls.index("consumer.close")
    (offsets,) = consumer.committed
    assert [o.offset for o in offsets.values()] == [13] and worker.committed_records == 3


def test_a_failed_commit_of_a_quiet_partition_rides_with_the_next_batchs_commit_of_another():
    calls: list[str] = []
    quiet, busy = TopicPartition("events", 0), TopicPartition("events", 1)
    consumer = FakeConsumer(calls, partitions={quiet, busy}, commit_errors=[KafkaConnectionError("lost")])
    worker, _ = _worker(calls, FakePipeline(calls), consumer=consumer)
    worker.handle_batch(records([GOOD], partition=0))  # its commit fails
    consumer.poll()  # the failure is answered
    worker.handle_batch(records([GOOD], partition=1, first_offset=20))  # the loop is never idle: busy goes on
    (offsets,) = consumer.committed
    assert {tp.partition: o.offset for tp, o in offsets.items()} == {0: 11, 1: 21}


def test_revoked_partitions_get_their_handled_offsets_committed_before_they_move():
    calls: list[str] = []
    gone, kept = TopicPartition("events", 0), TopicPartition("events", 1)
    consumer = FakeConsumer(calls, partitions={gone, kept},
                            commit_errors=[KafkaConnectionError("slow")])
    worker, _ = _worker(calls, FakePipeline(calls), consumer=consumer)
    worker.handle_batch(records([GOOD], partition=0) + records([GOOD], partition=1, first_offset=20))
    worker._listener.on_partitions_revoked([gone])
    (offsets,) = consumer.committed
    assert {tp.partition: o.offset for tp, o in offsets.items()} == {0: 11}  # the revoked one only, at once
    assert set(worker.commits.unacknowledged) == {kept}


def test_partitions_revoked_during_an_outage_are_not_committed():
    calls: list[str] = []
    gone, kept = TopicPartition("events", 0), TopicPartition("events", 1)
    consumer = FakeConsumer(calls, partitions={gone, kept})

    def rebalance():
        if gone in consumer.partitions:
            consumer.partitions = {kept}
            worker._listener.on_partitions_revoked([gone])

    consumer.on_poll = rebalance
    pipeline = FakePipeline(calls, errors=[redis.exceptions.ConnectionError("refused")])
    worker, _ = _worker(calls, pipeline, consumer=consumer)
    worker.handle_batch(records([GOOD], partition=0) + records([GOOD], partition=1, first_offset=20))
    (offsets,) = consumer.committed
    assert {tp.partition: o.offset for tp, o in offsets.items()} == {1: 21}


def test_the_ready_file_is_there_only_while_the_worker_is_ready(tmp_path):
    from types import SimpleNamespace

    from consumers.worker.main import mirror_readiness

    worker, stop, ready_file = SimpleNamespace(ready=threading.Event()), threading.Event(), tmp_path / "ready"
    thread = threading.Thread(target=mirror_readiness, args=(worker, ready_file, stop, 0.01), daemon=True)
    thread.start()

    def settles_to(present: bool) -> bool:
        for _ in range(200):
            if ready_file.exists() == present:
                return True
            stop.wait(0.01)
        return False

    assert settles_to(False)
    worker.ready.set()  # partitions assigned
    assert settles_to(True)
    worker.ready.clear()  # an outage: a readiness probe must fail now
    assert settles_to(False)
    worker.ready.set()
    assert settles_to(True)
    stop.set()
    thread.join(2)
    assert not ready_file.exists()


def test_every_redis_attempt_first_checks_the_store_is_whole():
    """Redis may come back empty during the outage: the retried write must not land before the rebuild."""
    calls: list[str] = []

    class StoreCheck:
        def ensure(self, stop) -> bool:
            calls.append("state-check")
            return False

    pipeline = FakePipeline(calls, errors=[redis.exceptions.ConnectionError("refused")])
    worker = RecommendationWorker(FAST, pipeline, FakeConsumer(calls), FakeProducer(calls), state=StoreCheck())
    pipeline.worker = worker
    worker.handle_batch(records([GOOD]))

    prepares = [i for i, call in enumerate(calls) if call == "prepare"]
    assert len(prepares) == 2
    assert all(calls[i - 1] == "state-check" for i in prepares)
    assert calls[calls.index("confirm") - 1] == "state-check"


def test_a_redis_cluster_failing_over_is_an_outage_waited_out_not_a_dead_letter():
    calls: list[str] = []
    failing_over = [redis.exceptions.ClusterDownError("CLUSTERDOWN The cluster is down"),
                    redis.exceptions.TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
                    redis.exceptions.SlotNotCoveredError("Slot 1234 not covered by the cluster")]
    pipeline = FakePipeline(calls, errors=failing_over)
    worker, consumer = _worker(calls, pipeline)
    notifications = worker.handle_batch(records([GOOD, GOOD]))

    assert len(notifications) == 2  # nothing dead-lettered: the batch went through once the cluster answered
    assert "send:events.dlq" not in calls and calls.count("prepare") == 4
    assert worker.outages == 1 and len(consumer.committed) == 1
