"""Redis stalls and restarts are waited out by the worker, with every known trigger counted.

A stall (SIGSTOP longer than the socket timeout) must lose and repeat nothing. A restart keeps nothing
when Redis has no persistence: docs/operations.md says what is promised then, and this test holds the
worker to it.
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager

import pytest

from producers.simulator import simulate
from tests.faults.ledger import FaultRow, NotificationLedger, fault_scale, restamped_recent
from tests.pipeline_helpers import expected_triggers, seed_catalogue, send, worker_process

pytestmark = pytest.mark.integration


def _stream_halves(settings, seed: int, n_events: int = 1200):
    world, events = simulate(n_events * fault_scale(), seed=seed, tools=200)
    events = restamped_recent(events)
    seed_catalogue(settings, world)
    half = len(events) // 2
    nth = settings.trigger_every_nth_page_view
    return events[:half], events[half:], expected_triggers(events[:half], nth), expected_triggers(events, nth)


@contextmanager
def _worker_past_the_first_half(fault_settings, tmp_path, seed: int):
    """A worker process that has notified the first half's triggers; SIGTERMed on the way out."""
    first, second, first_triggers, triggers = _stream_halves(fault_settings, seed=seed)
    ledger = NotificationLedger(fault_settings, triggers)
    log = tmp_path / "worker.log"
    worker = worker_process(fault_settings, log, max_poll_records=50)
    try:
        send(fault_settings, first)
        ledger.wait_for(first_triggers, timeout_s=60)
        yield worker, log, ledger, second
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)


def test_worker_waits_out_a_redis_stall_longer_than_its_timeout(fault_settings, private_redis, tmp_path,
                                                                 fault_table):
    with _worker_past_the_first_half(fault_settings, tmp_path, seed=41) as (worker, log, ledger, second):
        private_redis.stall()
        try:
            send(fault_settings, second)  # arrives while Redis does not answer
            time.sleep(6)  # six times the socket timeout
            assert worker.poll() is None, "the worker exited during the stall:\n" + log.read_text()[-3000:]
        finally:
            private_redis.resume()
        fault_end = time.monotonic()
        recovery_s = ledger.time_to_recover(fault_end)
        counts = ledger.counts()
        alive = worker.poll() is None
    fault_table.append(FaultRow("Redis SIGSTOP 6 s (socket timeout 1 s)", fault_settings.delivery, counts,
                                alive and recovery_s is not None, recovery_s))
    text = log.read_text()
    assert alive, text[-3000:]
    assert "OUTAGE: Redis" in text and "RECOVERED: Redis" in text, text[-3000:]
    counts.assert_exact(fault_settings)
    assert recovery_s is not None


def test_worker_survives_redis_restarting_empty(fault_settings, private_redis, tmp_path, fault_table):
    with _worker_past_the_first_half(fault_settings, tmp_path, seed=43) as (worker, log, ledger, second):
        private_redis.kill()
        send(fault_settings, second[: len(second) // 2])  # arrives while Redis is down
        time.sleep(3)
        assert worker.poll() is None, "the worker exited while Redis was down:\n" + log.read_text()[-3000:]
        private_redis.start()  # same port, no persistence: empty
        fault_end = time.monotonic()
        send(fault_settings, second[len(second) // 2 :])
        recovery_s = ledger.time_to_recover(fault_end)
        counts = ledger.counts(timeout_s=60)
        alive = worker.poll() is None
    fault_table.append(FaultRow("Redis SIGKILL, restarted empty (no persistence)", fault_settings.delivery, counts,
                                alive and recovery_s is not None, recovery_s,
                                "state rebuilt from the log by the worker (restore-state)"))
    assert alive, log.read_text()[-3000:]
    assert recovery_s is not None
    # Rebuilt from the log before anything is written again (consumers/worker/state_recovery.py): as if nothing
    # happened.
    counts.assert_exact(fault_settings)
