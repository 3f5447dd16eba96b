"""Helpers for integration tests that drive the real pipeline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kafka.consumer.fetcher import ConsumerRecord

from consumers.worker.main import build_worker
from consumers.worker.triggers import expected_trigger_ids
from consumers.worker.worker import RecommendationWorker
from model.baselines.session_cooccurrence import seed_catalogue as seed_streaming_catalogue
from producers.event_producer import EventProducer
from producers.synthetic_world import SyntheticWorld
from streamrec.dev_stack import spawn_with_settings
from streamrec.events import Event
from streamrec.kafka_clients import assign_whole_topic, make_consumer
from streamrec.settings import Settings
from streamrec.topics import ensure_topics


@dataclass
class RunningWorker:
    worker: RecommendationWorker
    thread: threading.Thread
    stop: threading.Event

    def shutdown(self, timeout: float = 20) -> None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"


def start_worker(settings: Settings, name: str = "worker") -> RunningWorker:
    ensure_topics(settings)
    worker = build_worker(settings, client_id=name)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name=name, daemon=True)
    thread.start()
    return RunningWorker(worker, thread, stop)


def seed_catalogue(settings: Settings, world: SyntheticWorld) -> None:
    """The world's products and tools, known to the streaming baseline before the test's traffic."""
    seed_streaming_catalogue(settings, products=world.product_ids, tools=world.tool_ids)


def send(settings: Settings, events: Sequence[Event]) -> None:
    ensure_topics(settings)
    with EventProducer(settings) as producer:
        producer.emit_many(events)


def read_topic(
    settings: Settings, topic: str, done: Callable[[list[ConsumerRecord]], bool], timeout_s: float = 60,
    settle_s: float = 0.0,
) -> list[ConsumerRecord]:
    """Read `topic` from the beginning until `done(records)` holds (then `settle_s` more) or time runs out.

    Assigns every partition by hand (no group): a group member that joins before the broker lists a new
    topic gets no partitions until its next metadata refresh, minutes later on Apache Kafka.
    """
    consumer = make_consumer(settings, None, "test-reader")
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    settle_until = None
    try:
        if not assign_whole_topic(consumer, topic, timeout_s):
            return records
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if settle_until is None and done(records):
                settle_until = time.monotonic() + settle_s
            if settle_until is not None and time.monotonic() >= settle_until:
                break
    finally:
        consumer.close()
    return records


def expected_triggers(events: Sequence[Event], every_nth_page_view: int) -> set[str]:
    """Event ids that must trigger, computed from the rules independently of the worker's Redis state."""
    return expected_trigger_ids(events, Settings(trigger_every_nth_page_view=every_nth_page_view))


def read_notifications_when_done(
    settings: Settings, workers: Sequence[RunningWorker], total_records: int, timeout_s: float = 90
) -> list[ConsumerRecord]:
    """Wait until the workers committed `total_records` and read every notification they published."""

    def done(records: list[ConsumerRecord]) -> bool:
        committed = sum(w.worker.committed_records for w in workers)
        published = sum(w.worker.pipeline.stats.notifications for w in workers)
        return committed >= total_records and len(records) >= published

    return read_topic(settings, settings.notifications_topic, done=done, timeout_s=timeout_s, settle_s=1.0)


def worker_process(settings: Settings, log_path, **overrides: object):
    """Start `streamrec worker` as its own process (so a test can SIGKILL it)."""
    return spawn_with_settings(["-m", "cli", "worker"], settings.model_copy(update=overrides), log_path)


def run_one_worker_over(settings: Settings, events: Sequence[Event]) -> tuple[RunningWorker, list[ConsumerRecord]]:
    """Start a worker, send `events`, read every notification it published once it committed them all, stop it."""
    running = start_worker(settings)
    try:
        send(settings, events)
        records = read_notifications_when_done(settings, [running], len(events))
    finally:
        running.shutdown()
    return running, records
