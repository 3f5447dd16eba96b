"""SIGKILL a worker mid-stream and start another: no trigger is lost and no trigger is notified twice.

Kafka without transactions is at-least-once: a worker killed after flushing notifications but before
committing may publish a notification again. It then carries the same deterministic notification_id
(the notifier drops repeats), so each trigger reaches the user once.
"""

from __future__ import annotations

import signal
from collections import defaultdict

import pytest

from producers.simulator import simulate
from streamrec.notifications import decode_notification
from tests.pipeline_helpers import expected_triggers, read_topic, seed_catalogue, send, worker_process

pytestmark = pytest.mark.integration


def test_killed_worker_loses_nothing_and_repeats_nothing(settings, tmp_path):
    world, events = simulate(3000, seed=23, tools=200)
    seed_catalogue(settings, world)
    triggers = expected_triggers(events, settings.trigger_every_nth_page_view)
    send(settings, events)

    first = worker_process(settings, tmp_path / "worker1.log", max_poll_records=40)
    try:
        before_kill = read_topic(settings, settings.notifications_topic, done=lambda recs: len(recs) >= 40,
                                 timeout_s=60)
        assert len(before_kill) >= 40, (tmp_path / "worker1.log").read_text()[-3000:]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    seen_by_kill = len({decode_notification(r.value).trigger_event_id for r in before_kill})
    assert seen_by_kill < len(triggers)  # it really died mid-stream

    second = worker_process(settings, tmp_path / "worker2.log")
    try:
        records = read_topic(
            settings, settings.notifications_topic,
            done=lambda recs: {decode_notification(r.value).trigger_event_id for r in recs} >= triggers,
            timeout_s=90, settle_s=1.0,
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)

    ids_per_trigger: dict[str, set[str]] = defaultdict(set)
    for record in records:
        notification = decode_notification(record.value)
        ids_per_trigger[notification.trigger_event_id].add(notification.notification_id)
    assert set(ids_per_trigger) == triggers, "a trigger was lost"
    assert all(len(ids) == 1 for ids in ids_per_trigger.values()), "a trigger got two different notifications"
    repeats = len(records) - len(ids_per_trigger)
    assert repeats <= 40 * 2, f"{repeats} repeated records: more than the batch in flight at the kill"
    assert second.returncode == 0, "SIGTERM should drain and exit cleanly"
    print(f"triggers={len(triggers)} records={len(records)} repeats={repeats} notified_before_kill={seen_by_kill}")
