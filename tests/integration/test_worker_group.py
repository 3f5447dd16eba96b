"""Two workers in one consumer group split the partitions and together notify each trigger once."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from producers.simulator import simulate
from streamrec.notifications import decode_notification
from tests.pipeline_helpers import (
    expected_triggers,
    read_notifications_when_done,
    seed_catalogue,
    send,
    start_worker,
)

pytestmark = pytest.mark.integration


def test_two_workers_share_partitions_and_notify_each_trigger_once(settings):
    world, events = simulate(2000, seed=31, tools=200)
    seed_catalogue(settings, world)
    triggers = expected_triggers(events, settings.trigger_every_nth_page_view)
    workers = [start_worker(settings, "worker-a"), start_worker(settings, "worker-b")]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(w.worker.consumer.assignment() for w in workers):
            time.sleep(0.2)
        assignments = [{tp.partition for tp in w.worker.consumer.assignment()} for w in workers]
        send(settings, events)
        records = read_notifications_when_done(settings, workers, len(events))
    finally:
        for w in workers:
            w.shutdown()

    assert all(assignments), f"both workers should own partitions: {assignments}"
    assert not assignments[0] & assignments[1]
    assert assignments[0] | assignments[1] == set(range(settings.events_partitions))
    assert all(w.worker.committed_records > 0 for w in workers)
    per_trigger = Counter(decode_notification(r.value).trigger_event_id for r in records)
    assert set(per_trigger) == triggers
    assert set(per_trigger.values()) == {1}
