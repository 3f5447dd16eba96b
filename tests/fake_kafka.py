"""Fake kafka-python clients for unit tests of the worker's loop: they record the calls the worker makes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from streamrec.notifications import Notification, RecommendedItem


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
    name: str = "producer"

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> FakeFuture:
        self.calls.append(f"send:{topic}")
        self.sent.append((topic, value))
        return FakeFuture(self.fail_with)

    def flush(self, timeout: float | None = None) -> None:
        self.calls.append("flush")

    def close(self, timeout: float | None = None) -> None:
        self.calls.append(f"{self.name}.close")


@dataclass
class FakeConsumer:
    calls: list[str]
    committed: list[dict] = field(default_factory=list)
    partitions: set[TopicPartition] = field(default_factory=lambda: {TopicPartition("events", 0)})
    commit_errors: list[Exception] = field(default_factory=list)  # raised by the next commits, in order
    on_poll: Callable[[], None] | None = None  # e.g. a rebalance during an outage
    paused: set[TopicPartition] = field(default_factory=set)
    to_poll: list[dict] = field(default_factory=list)  # what the next polls return, then nothing
    _answers: list[tuple] = field(default_factory=list)  # async commits not yet answered

    def subscribe(self, topics: list[str], listener: object = None) -> None:
        self.calls.append("subscribe")

    def commit(self, offsets: dict, timeout_ms: int | None = None) -> None:
        self._answer()
        self.calls.append("commit")
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.committed.append(offsets)

    def commit_async(self, offsets: dict, callback: Callable[[dict, object], None]) -> None:
        """The broker takes it at once (`committed`) unless `commit_errors` fail it; the callback is answered at
        the next poll or commit, as kafka-python does."""
        self.calls.append("commit_async")
        answer: object = self.commit_errors.pop(0) if self.commit_errors else None
        if answer is None:
            self.committed.append(offsets)
        self._answers.append((callback, offsets, answer))

    def _answer(self) -> None:
        while self._answers:
            callback, offsets, answer = self._answers.pop(0)
            callback(offsets, answer if answer is not None else "OffsetCommitResponse")

    def assignment(self) -> set[TopicPartition]:
        return set(self.partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        if set(partitions) - self.paused:
            self.calls.append("pause")
        self.paused |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.calls.append("resume")
        self.paused -= set(partitions)

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        if not self.calls or self.calls[-1] != "poll":
            self.calls.append("poll")  # once per run of polls: the outage loop polls often
        self._answer()
        if self.on_poll:
            self.on_poll()
        return self.to_poll.pop(0) if self.to_poll else {}

    def close(self) -> None:
        self.calls.append("consumer.close")

    def group_metadata(self) -> str:
        return "group-metadata"


@dataclass
class FakeTransactionalProducer(FakeProducer):
    """Records the transaction calls; `commit_errors` are raised by the next commit_transaction calls."""

    commit_errors: list[Exception] = field(default_factory=list)
    abort_error: Exception | None = None
    committed: list[list[tuple[str, bytes]]] = field(default_factory=list)  # what each committed txn held
    offsets: list[dict] = field(default_factory=list)
    _open: list[tuple[str, bytes]] = field(default_factory=list)

    def begin_transaction(self) -> None:
        self.calls.append("begin")
        self._open = []

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> FakeFuture:
        self._open.append((topic, value))
        return super().send(topic, key, value)

    def send_offsets_to_transaction(self, offsets: dict, group_metadata: object) -> None:
        self.calls.append("send_offsets")
        self.offsets.append(offsets)

    def commit_transaction(self) -> None:
        self.calls.append("commit_transaction")
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.committed.append(self._open)

    def abort_transaction(self) -> None:
        self.calls.append("abort")
        if self.abort_error:
            raise self.abort_error


class FakePipeline:
    """Turns every event into one notification, or raises what it is told to (`errors`, one per call, in order)."""

    def __init__(self, calls: list[str], raise_error: Exception | None = None,
                 errors: list[Exception] | None = None, confirm_errors: list[Exception] | None = None) -> None:
        self.calls = calls
        self.raise_error = raise_error
        self.errors = list(errors or [])
        self.confirm_errors = list(confirm_errors or [])
        self.observe_ready: list[bool] = []  # the worker's readiness at each failing call
        self.worker = None
        from streamrec.stage_timing import StageTimes

        self.stages = StageTimes()  # the worker times its Kafka stages into the pipeline's timer

    def prepare(self, events):
        self.calls.append("prepare")
        if self.errors:
            if self.worker is not None:
                self.observe_ready.append(self.worker.ready.is_set())
            raise self.errors.pop(0)
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
        if self.confirm_errors:
            raise self.confirm_errors.pop(0)


def records(values: list[bytes], partition: int = 0, first_offset: int = 10) -> list[ConsumerRecord]:
    return [
        ConsumerRecord(topic="events", partition=partition, leader_epoch=-1, offset=offset, timestamp=0,
                       timestamp_type=0, key=b"u", value=value, headers=[], checksum=None, serialized_key_size=1,
                       serialized_value_size=len(value), serialized_header_size=-1)
        for offset, value in enumerate(values, start=first_offset)
    ]
