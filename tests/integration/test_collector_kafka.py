"""The collector on a real broker: 202 means the events are in Kafka; with the broker gone, 503 and nothing lost."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from producers.collector.app import create_app
from producers.collector.settings import CollectorSettings
from streamrec.dev_stack import free_port, tansu_binary, wait_for_port
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import read_topic

pytestmark = pytest.mark.integration
KEY = {"X-API-Key": "shop-key"}


def events(n: int, tag: str) -> list[dict[str, object]]:
    return [
        {"type": "page_view", "event_id": f"{tag}-{i}-{uuid.uuid4().hex[:6]}", "user_id": f"u{i % 3}",
         "session_id": "s", "item_id": f"p{i}"}
        for i in range(n)
    ]


class SwitchableProxy:
    """A TCP relay on 127.0.0.1 that the broker advertises: `down()` drops every connection and refuses new ones."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port, self.target_port = port, target_port
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
            listener.close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[tuple[str, SwitchableProxy]]:
    """A broker of this test's own, reachable only through the proxy (it advertises the proxy's address)."""
    broker_port, proxy_port = free_port(), free_port()
    log = (tmp_path / "tansu.log").open("ab")
    process = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{broker_port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{proxy_port}", "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_port("127.0.0.1", broker_port, 15, process)
        proxy = SwitchableProxy(proxy_port, broker_port)
        proxy.up()
        yield f"127.0.0.1:{proxy_port}", proxy
        proxy.down()
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def collector_client(settings, **options: object) -> TestClient:
    collector = CollectorSettings(api_keys={"shop": "shop-key"}, demo_enabled=False, **options)
    return TestClient(create_app(settings, collector))


def test_accepted_events_are_in_the_topic_with_the_user_as_key(settings):
    ensure_topics(settings)
    batch = events(20, "ok")
    with collector_client(settings) as client:
        response = client.post("/v1/events", json={"events": batch}, headers=KEY)
    assert response.status_code == 202
    wanted = {e["event_id"] for e in batch}
    records = read_topic(settings, settings.events_topic,
                         done=lambda recs: wanted <= {json.loads(r.value)["event_id"] for r in recs}, timeout_s=30)
    by_id = {json.loads(r.value)["event_id"]: r for r in records}
    assert wanted <= set(by_id)
    assert all(by_id[e["event_id"]].key == e["user_id"].encode() for e in batch)


def test_no_broker_at_start_is_503_with_retry_after(settings):
    nowhere = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    with collector_client(nowhere, produce_timeout_s=2, retry_after_s=3) as client:
        response = client.post("/v1/events", json=events(1, "x")[0], headers=KEY)
        again = client.post("/v1/events", json=events(1, "y")[0], headers=KEY)
        health = client.get("/healthz").json()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert health["broker"] == "unavailable"
    # Within Retry-After the collector answers at once instead of waiting out the produce timeout again.
    assert again.status_code == 503
    assert "not retried yet" in again.json()["message"]


def test_broker_down_during_posts_is_503_and_nothing_accepted_is_lost(settings, proxied_broker):
    bootstrap, proxy = proxied_broker
    own = settings.model_copy(update={"kafka_bootstrap": bootstrap})
    ensure_topics(own)
    before, during, after = events(5, "before"), events(5, "during"), events(5, "after")
    with collector_client(own, produce_timeout_s=3, retry_after_s=2) as client:
        assert client.post("/v1/events", json={"events": before}, headers=KEY).status_code == 202

        proxy.down()
        refused = client.post("/v1/events", json={"events": during}, headers=KEY)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "2"
        assert refused.json()["error"] == "broker_unavailable"

        proxy.up()
        # What a client does with a 503: retry the same events (same ids) after Retry-After, with backoff.
        accepted = {}
        deadline = time.monotonic() + 60
        for name, batch in (("during", during), ("after", after)):
            while time.monotonic() < deadline:
                response = client.post("/v1/events", json={"events": batch}, headers=KEY)
                if response.status_code == 202:
                    accepted[name] = response.json()["event_ids"]
                    break
                assert response.status_code == 503
                time.sleep(1)
        assert set(accepted) == {"during", "after"}
        metrics = client.get("/metrics").text

    wanted = {e["event_id"] for e in before + during + after}
    records = read_topic(own, own.events_topic,
                         done=lambda recs: wanted <= {json.loads(r.value)["event_id"] for r in recs}, timeout_s=30)
    arrived = [json.loads(r.value)["event_id"] for r in records]
    assert wanted <= set(arrived), f"lost: {wanted - set(arrived)}"
    assert set(arrived) <= wanted  # nothing else (a retried event may arrive twice: the worker drops copies)
    assert 'streamrec_collector_requests_rejected_total{reason="broker_unavailable"}' in metrics
