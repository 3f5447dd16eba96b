"""Exactly-once on Apache Kafka: a transaction that fails after its records reached the broker is aborted and
redone, and read_committed readers (the notifier, watch, restore-state) see each notification once.

The aborted copies are really in the log: a read_uncommitted reader sees them, which is what makes the
committed reader's single copy a property of the transaction and not of luck.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from kafka.errors import KafkaConnectionError

from consumers.worker.main import build_worker
from producers.simulator import simulate
from streamrec.dev_stack import TANSU
from streamrec.notifications import decode_notification
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import expected_triggers, read_topic, seed_catalogue, send

pytestmark = pytest.mark.integration


def test_an_aborted_transaction_is_redone_and_read_committed_sees_each_notification_once(settings, kafka_broker):
    if kafka_broker.kind == TANSU:
        pytest.skip("Tansu does not isolate transactions")
    exactly_once = settings.model_copy(update={"delivery": "exactly-once", "max_poll_records": 50})
    world, events = simulate(400, seed=61, tools=100)
    seed_catalogue(exactly_once, world)
    triggers = expected_triggers(events, exactly_once.trigger_every_nth_page_view)
    ensure_topics(exactly_once)  # as run_worker does: a group that subscribes before its topic exists waits
    worker = build_worker(exactly_once, client_id="eos-test")
    producer = worker.producer
    commit = producer.commit_transaction
    injected: list[int] = []

    def commit_lost_once() -> None:  # the records are on the broker, then the commit "fails"
        if not injected:
            producer.flush()
            injected.append(1)
            raise KafkaConnectionError("injected: the commit did not reach the coordinator")
        commit()

    producer.commit_transaction = commit_lost_once
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        send(exactly_once, events)
        committed = read_topic(
            exactly_once, exactly_once.notifications_topic,
            done=lambda recs: {decode_notification(r.value).trigger_event_id for r in recs} >= triggers,
            timeout_s=90, settle_s=1.5,
        )
    finally:
        stop.set()
        thread.join(30)
    uncommitted = read_topic(settings, settings.notifications_topic, done=lambda recs: False, timeout_s=4)

    per_trigger = Counter(decode_notification(r.value).trigger_event_id for r in committed)
    assert injected, "the failure was never injected"
    assert set(per_trigger) == triggers
    assert set(per_trigger.values()) == {1}, "a committed reader saw a notification twice"
    assert len(uncommitted) > len(committed), "the aborted transaction's records should be in the log"
