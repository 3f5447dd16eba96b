"""Workers die and come and go mid-stream: every known trigger is notified once.

A SIGKILLed worker may have flushed notifications it had not committed: its successor publishes them again
under the same notification id (at-least-once; the notifier drops repeats), counted as repeated records.
"""

from __future__ import annotations

import signal
import time

import pytest

from producers.simulator import simulate
from tests.faults.ledger import FaultRow, NotificationLedger, fault_scale, restamped_recent, wait_for_log_line
from tests.pipeline_helpers import expected_triggers, read_topic, seed_catalogue, send, worker_process

pytestmark = pytest.mark.integration


def _known_traffic(settings, seed: int, n_events: int = 1500):
    """Simulated traffic stamped over the last seconds: the simulator's clock is months back, and the events topic's
    7-day retention deleted such records at its next check, mid-test (the restarted worker then found its
    committed offsets below the log start and resumed at the end, every trigger after the kill unseen)."""
    world, events = simulate(n_events * fault_scale(), seed=seed, tools=200)
    events = restamped_recent(events)
    seed_catalogue(settings, world)
    return events, expected_triggers(events, settings.trigger_every_nth_page_view)


def test_a_worker_killed_mid_stream_and_restarted_loses_nothing(delivery_settings, tmp_path, fault_table):
    """SIGKILL after some notifications went out, start a new worker; `fault_scale()` kills in a row."""
    settings = delivery_settings
    events, triggers = _known_traffic(settings, seed=53)
    ledger = NotificationLedger(settings, triggers)
    send(settings, events)
    kills = fault_scale()
    worker = worker_process(settings, tmp_path / "worker-0.log", max_poll_records=40)
    try:
        for kill in range(1, kills + 1):
            wanted = 40 * kill
            read_topic(settings, settings.notifications_topic, done=lambda recs, n=wanted: len(recs) >= n,
                       timeout_s=60)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            killed_at = time.monotonic()
            worker = worker_process(settings, tmp_path / f"worker-{kill}.log", max_poll_records=40)
        recovery_s = ledger.time_to_recover(killed_at, timeout_s=90)
        counts = ledger.counts(timeout_s=120)
        alive = worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    fault_table.append(FaultRow(f"worker SIGKILL mid-stream x{kills}, new worker started", settings.delivery,
                                counts, True, recovery_s, "restart by the orchestrator; time includes its start-up"))
    assert alive
    counts.assert_exact(settings)
    assert counts.repeated_records <= 2 * 40 * kills, "more repeats than the batches in flight at the kills"


def test_a_worker_joining_and_one_leaving_mid_stream_loses_nothing(delivery_settings, tmp_path, fault_table):
    settings = delivery_settings
    events, triggers = _known_traffic(settings, seed=59)
    ledger = NotificationLedger(settings, triggers)
    third = len(events) // 3
    first = worker_process(settings, tmp_path / "worker-1.log", max_poll_records=40)
    second = None
    try:
        wait_for_log_line(tmp_path / "worker-1.log", "partitions assigned")
        send(settings, events[:third])
        second = worker_process(settings, tmp_path / "worker-2.log", max_poll_records=40)  # joins mid-stream
        wait_for_log_line(tmp_path / "worker-2.log", "partitions assigned")
        send(settings, events[third : 2 * third])
        first.send_signal(signal.SIGTERM)  # leaves: drains its batch, commits, leaves the group
        left_at = time.monotonic()
        send(settings, events[2 * third :])
        recovery_s = ledger.time_to_recover(left_at, timeout_s=90)
        counts = ledger.counts(timeout_s=120)
        first.wait(30)
        clean_exit = first.returncode == 0
        alive = second.poll() is None
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
    fault_table.append(FaultRow("second worker joins mid-stream, first SIGTERMed", settings.delivery, counts,
                                alive, recovery_s, "rebalance twice"))
    assert clean_exit and alive, (first.returncode, (tmp_path / "worker-1.log").read_text()[-2500:])
    counts.assert_exact(settings)
    assert counts.repeated_records == 0, "a clean hand-over commits before it leaves: nothing is repeated"
