"""A broker that restarts under running producers: the collector, the SDK and the simulator carry on.

Each test gets a Tansu of its own that it kills and starts again on the same port. Tansu runs on memory
storage here, so a restart loses its topics: the tests recreate them (as a deployment's `ensure_topics` would)
before they expect the producers to recover.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaTimeoutError

from producers.event_producer import EventProducer
from producers.live_simulation import stream_simulation
from streamrec.dev_stack import free_port, start_tansu
from streamrec.events import PageView
from streamrec.kafka_clients import abandon_producer, make_producer
from streamrec.settings import Settings
from streamrec.topics import ensure_topics
from tests.integration.test_collector_kafka import KEY, collector_client, events
from tests.pipeline_helpers import read_topic

pytestmark = pytest.mark.integration


class RestartableBroker:
    def __init__(self, port: int, log_path: Path) -> None:
        self.port, self.log_path = port, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = start_tansu(self.port, self.log_path)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    broker = RestartableBroker(free_port(), tmp_path / "tansu.log")
    broker.start()
    yield broker
    broker.kill()


@pytest.fixture
def own(settings: Settings, broker: RestartableBroker) -> Settings:
    """The test's settings pointed at its own broker, with short timeouts so an outage is seen quickly."""
    return settings.model_copy(
        update={
            "kafka_bootstrap": f"127.0.0.1:{broker.port}",
            "kafka_bootstrap_timeout_ms": 2000,
            "outage_backoff_s": 0.2,
            "outage_backoff_max_s": 1.0,
        }
    )


def event_ids(settings: Settings, wanted: set[str], timeout_s: float = 30) -> list[str]:
    records = read_topic(
        settings,
        settings.events_topic,
        timeout_s=timeout_s,
        done=lambda recs: wanted <= {json.loads(r.value)["event_id"] for r in recs},
    )
    return [json.loads(r.value)["event_id"] for r in records]


def test_collector_answers_503_during_a_restart_and_202_soon_after_without_its_own_restart(own, broker):
    ensure_topics(own)
    with collector_client(own, produce_timeout_s=2, retry_after_s=1) as client:
        sink = client.app.state.sink
        assert client.post("/v1/events", json={"events": events(3, "before")}, headers=KEY).status_code == 202

        broker.kill()
        assert client.post("/v1/events", json={"events": events(3, "down")}, headers=KEY).status_code == 503
        assert sink.last_error is not None
        time.sleep(1.1)  # past Retry-After: the next request tries a fresh producer, still no broker
        assert client.post("/v1/events", json={"events": events(3, "down")}, headers=KEY).status_code == 503
        assert sink.last_error is not None

        broker.start()
        ensure_topics(own)
        back = time.monotonic()
        batch = events(5, "after")
        while True:  # a client retrying the same events after Retry-After
            response = client.post("/v1/events", json={"events": batch}, headers=KEY)
            if response.status_code == 202 or time.monotonic() - back > 30:
                break
            assert response.status_code == 503
            time.sleep(1)
        recovered_s = time.monotonic() - back
        assert response.status_code == 202, response.json()
        assert sink.last_error is None
        print(f"collector accepted events {recovered_s:.1f} s after the broker came back")
        assert recovered_s < 8
    wanted = {e["event_id"] for e in batch}
    assert wanted <= set(event_ids(own, wanted))


@pytest.mark.parametrize("idempotent", [False, True], ids=["default", "idempotent"])
def test_sdk_rides_out_a_broker_restart_and_delivers_every_event(own, broker, idempotent):
    """Events emitted while the broker is gone are kept, re-sent on a new client, and all arrive.

    `idempotent` is the kafka-python 3 default we turned off: its producer goes fatal when the restarted broker
    no longer knows its producer id; the rebuilt client must get past that too.
    """
    ensure_topics(own)
    # Short delivery timeouts so records stuck on the dead broker fail (and are re-sent) within the test.
    options = {"delivery_timeout_ms": 2000, "request_timeout_ms": 1500, "enable_idempotence": idempotent}
    producer = EventProducer(own, client_id="sdk-restart", **options)
    emitted: list[str] = []
    stop = threading.Event()

    def emit_steadily() -> None:  # ~500 events/s from the caller's thread, as an app would
        i = 0
        while not stop.is_set():
            event = PageView(event_id=f"r{i}", user_id=f"u{i % 7}", session_id="s", item_id=f"p{i % 50}")
            producer.emit(event)
            emitted.append(event.event_id)
            i += 1
            time.sleep(0.002)

    emitter = threading.Thread(target=emit_steadily)
    emitter.start()
    try:
        time.sleep(1)
        broker.kill()
        killed_at = len(emitted)
        time.sleep(3)
        broker.start()
        ensure_topics(own)
        back = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        emitter.join()
    producer.flush(timeout=60)
    drained_s = time.monotonic() - back
    producer.close()
    # The restarted broker lost what it had acknowledged before (memory storage); everything from the kill on
    # must be there.
    wanted = set(emitted[killed_at:])
    arrived = event_ids(own, wanted)
    assert wanted <= set(arrived), f"{len(wanted - set(arrived))} of {len(wanted)} events lost"
    assert producer.lost == 0 and producer.undelivered == 0
    print(
        f"idempotent={idempotent}: {len(emitted)} emitted, {len(wanted)} after the kill, {producer.failed} "
        f"failures, {producer.resent} re-sent, 0 lost; all acknowledged {drained_s:.1f} s after the restart"
    )


def test_simulator_keeps_going_across_a_broker_restart(own, broker):
    ensure_topics(own)
    result = {}

    def simulate() -> None:
        result["run"] = stream_simulation(own, n_events=4000, rate=500, progress=False, drain_timeout_s=60)

    runner = threading.Thread(target=simulate)
    runner.start()
    time.sleep(2)
    broker.kill()
    time.sleep(3)
    broker.start()
    ensure_topics(own)
    runner.join(120)
    assert not runner.is_alive()
    run = result["run"]
    assert run.sent == 4000
    assert run.lost == 0
    print(f"simulator: {run.sent} sent in {run.seconds:.1f} s, {run.resent} re-sent, {run.lost} lost")


def test_producers_do_not_create_topics_by_accident(settings):
    """kafka-python 3.0.12 ignores allow_auto_create_topics unless make_producer patches it through."""
    missing = f"never-created-{uuid.uuid4().hex[:8]}"
    producer = make_producer(settings, "no-auto-create", max_block_ms=1500)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(missing, b"x").get(timeout=5)
    finally:
        abandon_producer(producer)
    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        assert missing not in admin.list_topics()
    finally:
        admin.close()
