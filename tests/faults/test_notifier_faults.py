"""The notifier is SIGKILLed mid-stream and restarted: SSE clients resume with Last-Event-ID, nothing is lost,
nothing is pushed twice (the redelivered batch is dropped by notification id, the stream resumes after the
last id the browser saw)."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections import defaultdict
from datetime import timedelta

import httpx
import pytest

from consumers.notifier.tokens import mint_user_token
from streamrec.dev_stack import free_port, spawn_with_settings, wait_for_port
from streamrec.events import utc_now
from streamrec.kafka_clients import make_producer
from streamrec.notifications import Notification, RecommendedItem, encode_notification, notification_id_for
from streamrec.topics import ensure_topics
from tests.faults.ledger import FaultRow, TriggerCounts

pytestmark = pytest.mark.integration
SECRET = "fault-suite-secret"


class SseClient(threading.Thread):
    """A browser's EventSource: reconnects after any break, with the last id it saw as Last-Event-ID."""

    def __init__(self, base_url: str, user_id: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url = f"{base_url}/v1/users/{user_id}/notifications/stream"
        self.token = mint_user_token(SECRET, user_id, 3600)
        self.stop = stop
        self.last_id: str | None = None
        self.received: list[str] = []  # notification ids, in arrival order, across reconnections
        self.connections = 0

    def run(self) -> None:
        while not self.stop.is_set():
            headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                with httpx.stream("GET", self.url, params={"token": self.token}, headers=headers,
                                  timeout=httpx.Timeout(5.0, read=3.0)) as response:
                    if response.status_code != 200:
                        time.sleep(0.3)
                        continue
                    self.connections += 1
                    self._read(response)
            except httpx.HTTPError:
                pass
            time.sleep(0.3)

    def _read(self, response: httpx.Response) -> None:
        event_id, kind = None, None
        for line in response.iter_lines():
            if self.stop.is_set():
                return
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "notification":
                self.received.append(json.loads(line[6:])["notification_id"])
                self.last_id = event_id
            elif line == "":
                event_id, kind = None, None


def _notifications(users: list[str], per_user: int, wave: str) -> list[Notification]:
    now = utc_now()
    return [
        Notification(
            notification_id=notification_id_for(f"{wave}-{user}-{i}"), user_id=user, session_id=f"{user}-s",
            items=[RecommendedItem(item_id=f"{wave}-item-{i}", score=1.0)], model_name="fault-suite",
            model_version="1", reason="test", trigger_event_id=f"{wave}-{user}-{i}", trigger_event_type="page_view",
            trigger_ts=now - timedelta(seconds=1), created_at=now,
        )
        for user in users for i in range(per_user)
    ]


def test_notifier_killed_mid_stream_pushes_each_notification_once(delivery_settings, tmp_path, monkeypatch,
                                                                   fault_table):
    settings = delivery_settings  # exactly-once: the notifier reads read_committed
    port = free_port()
    for name, value in {
        "PORT": str(port), "TOKEN_SECRET": SECRET, "CONSUMER_GROUP": f"notifier-{uuid.uuid4().hex[:8]}",
        "MAX_PER_HOUR": "0", "MAX_PER_DAY": "0", "MIN_INTERVAL_S": "0", "REPEAT_WINDOW_S": "0", "MAX_AGE_S": "0",
        "PENDING_MAX": "1000", "HEARTBEAT_S": "1",
    }.items():
        monkeypatch.setenv(f"STREAMREC_NOTIFIER_{name}", value)
    ensure_topics(settings)
    users = [f"user-{i}" for i in range(4)]
    waves = {w: _notifications(users, 40, w) for w in ("before", "down", "after")}
    expected = {n.trigger_event_id for ns in waves.values() for n in ns}
    producer = make_producer(settings, "fault-notifications")

    def publish(wave: str) -> None:
        for n in waves[wave]:
            producer.send(settings.notifications_topic, key=n.user_id.encode(), value=encode_notification(n))
        producer.flush()

    def start_notifier(log_name: str):
        process = spawn_with_settings(["-m", "cli", "notifier"], settings, tmp_path / log_name)
        wait_for_port("127.0.0.1", port, 60, process)
        return process

    stop = threading.Event()
    clients = [SseClient(f"http://127.0.0.1:{port}", user, stop) for user in users]
    notifier = start_notifier("notifier-1.log")
    try:
        for client in clients:
            client.start()
        publish("before")
        _wait(lambda: sum(len(c.received) for c in clients) >= len(waves["before"]) // 2, 60)
        notifier.send_signal(signal.SIGKILL)  # mid-batch: some of "before" handled, the offsets maybe not
        notifier.wait(10)
        publish("down")
        time.sleep(1)
        notifier = start_notifier("notifier-2.log")
        restarted = time.monotonic()
        publish("after")
        _wait(lambda: sum(len(c.received) for c in clients) >= len(expected), 90)
        recovery_s = time.monotonic() - restarted
        time.sleep(2)  # a repeat would arrive now
    finally:
        stop.set()
        notifier.send_signal(signal.SIGTERM)
        notifier.wait(20)
        producer.close()
    pushed: dict[str, int] = defaultdict(int)
    for client in clients:
        for nid in client.received:
            pushed[nid] += 1
    by_id = {n.notification_id: n.trigger_event_id for ns in waves.values() for n in ns}
    counts = TriggerCounts(
        expected=len(expected), once=sum(1 for v in pushed.values() if v == 1),
        lost=sorted(t for nid, t in by_id.items() if nid not in pushed), duplicated=0,
        repeated_records=sum(v - 1 for v in pushed.values()), unexpected=sum(1 for nid in pushed if nid not in by_id),
    )
    fault_table.append(FaultRow("notifier SIGKILL mid-stream, restarted; 4 SSE clients", settings.delivery, counts,
                                True, recovery_s, "pushes counted at the browsers; restart by the orchestrator"))
    assert all(c.connections >= 2 for c in clients), "every client should have reconnected after the kill"
    assert not counts.lost, f"{len(counts.lost)} notifications never pushed"
    assert counts.repeated_records == 0, f"{counts.repeated_records} pushes repeated"
    assert counts.unexpected == 0


def _wait(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
