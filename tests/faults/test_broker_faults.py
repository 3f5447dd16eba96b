"""The broker crashes mid-stream (SIGKILL) and comes back with its log: producers and the worker carry on.

Needs a broker that keeps its data across a restart (Apache Kafka); Tansu keeps topics in memory only.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from producers.event_producer import EventProducer
from producers.simulator import simulate
from tests.faults.ledger import FaultRow, NotificationLedger, fault_scale, restamped_recent
from tests.pipeline_helpers import expected_triggers, seed_catalogue, send, worker_process

pytestmark = pytest.mark.integration


def test_worker_and_producer_carry_on_after_the_broker_is_killed_and_restarted(
    fault_settings, kafka_broker, tmp_path, fault_table
):
    if not kafka_broker.persistent:
        pytest.skip(f"{kafka_broker.kind} loses its topics on restart: this experiment needs Apache Kafka")
    world, events = simulate(1200 * fault_scale(), seed=47, tools=200)
    events = restamped_recent(events)
    seed_catalogue(fault_settings, world)
    half = len(events) // 2
    nth = fault_settings.trigger_every_nth_page_view
    triggers = expected_triggers(events, nth)
    ledger = NotificationLedger(fault_settings, triggers)
    log = tmp_path / "worker.log"
    worker = worker_process(fault_settings, log, max_poll_records=50)
    delivered: dict[str, int] = {}
    try:
        send(fault_settings, events[:half])
        ledger.wait_for(expected_triggers(events[:half], nth), timeout_s=90)
        producer = EventProducer(fault_settings, client_id="fault-producer")  # connected before the crash
        kafka_broker.kill()

        def produce_rest() -> None:  # the SDK buffers what the dead broker refuses and sends it again
            with producer:
                producer.emit_many(events[half:])
                producer.flush(timeout=120)
                delivered.update(delivered=producer.delivered, lost=producer.lost, resent=producer.resent)

        sender = threading.Thread(target=produce_rest, daemon=True)
        sender.start()
        time.sleep(4)
        assert worker.poll() is None, "the worker exited while the broker was down:\n" + log.read_text()[-3000:]
        kafka_broker.start()
        fault_end = time.monotonic()
        sender.join(150)
        recovery_s = ledger.time_to_recover(fault_end, timeout_s=90)
        counts = ledger.counts(timeout_s=120)
        alive = worker.poll() is None
    finally:
        kafka_broker.ensure_running()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    fault_table.append(FaultRow("broker SIGKILL, restarted with its log", fault_settings.delivery, counts,
                                alive and recovery_s is not None, recovery_s,
                                f"producer re-sent {delivered.get('resent', '?')}, lost {delivered.get('lost', '?')}"))
    assert delivered.get("lost") == 0, delivered
    assert alive, log.read_text()[-3000:]
    assert recovery_s is not None
    counts.assert_exact(fault_settings)
