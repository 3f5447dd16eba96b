"""A running worker rides out Redis faults: a 6 s stall (SIGSTOP) and a crash with an empty restart (SIGKILL).

The worker has its own redis-server (so it can be stopped and killed) with a 1 s socket timeout. Events are
streamed before, during and after each fault; every trigger must be notified and the worker must never exit.

What is expected, and printed per phase: no trigger lost; no trigger notified twice (a stalled batch is retried
from the Redis step, after the session writes that did land: those come back as duplicates that keep their
page-view ordinals, and the produce is not repeated because confirm is retried alone). The Redis restart loses
session state and the model's counts (the restarted server loads a snapshot holding only the catalogue seed):
events after it start new sessions, so their triggers are the ones expected here.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from producers.simulator import simulate
from streamrec.dev_stack import free_port, start_redis
from streamrec.notifications import decode_notification
from tests.pipeline_helpers import expected_triggers, read_topic, seed_catalogue, send, start_worker

pytestmark = pytest.mark.integration


def _phase(events, name: str):
    """The same traffic under ids of its own, so phases do not see each other's events as redeliveries."""
    return [e.model_copy(update={"event_id": f"{name}-{e.event_id}", "user_id": f"{name}-{e.user_id}",
                                 "session_id": f"{name}-{e.session_id}"}) for e in events]


def _wait(condition, timeout_s: float, what: str, detail=lambda: "") -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"timed out waiting for {what} {detail()}"
        time.sleep(0.05)
    return time.monotonic() - started


def _where(running, sent: int) -> str:
    """Where the worker stood: enough to tell a dead thread, an outage, a restore and an empty assignment apart."""
    worker = running.worker
    restores = worker.state.restores if worker.state is not None else None
    return (f"(committed {worker.committed_records} of {sent}, alive={running.thread.is_alive()}, "
            f"outage={worker.outage}, batches={worker.batches}, restores={restores}, "
            f"assigned={sorted(tp.partition for tp in worker.consumer.assignment() or ())})")


def test_the_worker_rides_out_a_redis_stall_and_an_empty_restart(settings, tmp_path: Path):
    port = free_port()
    log_path = tmp_path / "redis" / "redis.log"
    server = start_redis(port, log_path)
    settings = settings.model_copy(update={
        "redis_url": f"redis://127.0.0.1:{port}/0", "redis_socket_timeout_s": 1.0, "redis_connect_timeout_s": 0.5,
        "outage_backoff_s": 0.1, "outage_backoff_max_s": 1.0, "max_poll_records": 25,
    })
    world, traffic = simulate(240, seed=31, tools=50)
    seed_catalogue(settings, world)
    redis.Redis.from_url(settings.redis_url).save()  # the snapshot the restarted server loads: the seed only
    phases = {name: _phase(traffic, name) for name in ("before", "stall", "restart")}
    triggers = {name: expected_triggers(events, settings.trigger_every_nth_page_view)
                for name, events in phases.items()}
    assert all(triggers.values())

    running = start_worker(settings)
    worker = running.worker
    sent = 0
    figures: dict[str, float] = {}
    try:
        send(settings, phases["before"])
        sent += len(phases["before"])
        _wait(lambda: worker.committed_records >= sent, 60, "the first phase", lambda: _where(running, sent))

        server.send_signal(signal.SIGSTOP)  # Redis stalls: replies stop, connections stay open
        stalled_at = time.monotonic()
        send(settings, phases["stall"])
        sent += len(phases["stall"])
        _wait(lambda: (worker.outage or "").startswith("Redis"), 10, "the worker to notice the stall")
        assert not worker.ready.is_set(), "readiness must be cleared during an outage"
        committed_in_stall = worker.committed_records
        time.sleep(max(0.0, 6 - (time.monotonic() - stalled_at)))
        assert worker.committed_records == committed_in_stall, "nothing may be committed during the outage"
        server.send_signal(signal.SIGCONT)
        resumed_at = time.monotonic()
        figures["stall_recovery_s"] = _wait(lambda: worker.outage is None, 20, "recovery from the stall")
        figures["stall_caught_up_s"] = _wait(lambda: worker.committed_records >= sent, 60, "the stall's backlog",
                                             lambda: _where(running, sent))
        assert worker.ready.is_set()
        del resumed_at

        os.kill(server.pid, signal.SIGKILL)  # Redis crashes...
        server.wait(10)
        send(settings, phases["restart"])
        sent += len(phases["restart"])
        _wait(lambda: (worker.outage or "").startswith("Redis"), 10, "the worker to notice the crash")
        time.sleep(2)
        server = start_redis(port, log_path)  # ...and comes back empty but for the catalogue snapshot
        restarted_at = time.monotonic()
        figures["restart_recovery_s"] = _wait(lambda: worker.outage is None, 20, "recovery from the restart")
        figures["restart_caught_up_s"] = time.monotonic() - restarted_at + _wait(
            lambda: worker.committed_records >= sent, 60, "the restart's backlog", lambda: _where(running, sent))
        assert running.thread.is_alive(), "the worker exited"

        every = set().union(*triggers.values())
        records = read_topic(settings, settings.notifications_topic,
                             done=lambda recs: {decode_notification(r.value).trigger_event_id for r in recs} >= every,
                             timeout_s=30, settle_s=1.0)
    finally:
        if running.thread.is_alive():
            running.shutdown()
        server.send_signal(signal.SIGCONT)
        server.terminate()
        server.wait(10)

    per_trigger = Counter(decode_notification(r.value).trigger_event_id for r in records)
    report = []
    for name, expected in triggers.items():
        lost = len(expected - set(per_trigger))
        duplicated = sum(per_trigger[t] - 1 for t in expected if per_trigger[t] > 1)
        report.append(f"{name}: triggers={len(expected)} lost={lost} duplicated={duplicated}")
        assert lost == 0, f"{name}: {lost} triggers lost"
        assert duplicated == 0, f"{name}: {duplicated} extra notifications"
    print("; ".join(report), "|", " ".join(f"{k}={v:.2f}" for k, v in figures.items()),
          f"| outages={worker.outages} producers_rebuilt={worker.producers_rebuilt}")
