"""The notifier waits out a Redis outage: frozen (SIGSTOP, longer than the socket timeout) and killed and
restarted on the same port. Every notification is queued exactly once, the loop never dies, and the health
endpoints tell the truth meanwhile."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from consumers.notifier.app import create_app
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.tokens import mint_user_token
from streamrec.dev_stack import free_port, start_redis
from streamrec.events import utc_now
from streamrec.kafka_clients import make_producer
from streamrec.notifications import Notification, RecommendedItem, encode_notification, notification_id_for
from streamrec.settings import Settings
from streamrec.topics import ensure_topics
from tests.web_helpers import read_sse, serve

pytestmark = pytest.mark.integration
SECRET = "outage-secret"
NO_FATIGUE = {"max_per_hour": 0, "max_per_day": 0, "min_interval_s": 0, "repeat_window_s": 0, "max_age_s": 0}


class OwnRedis:
    """A redis-server of this test's own, to freeze, kill and restart on one port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process = start_redis(self.port, log_dir / "redis-0.log")
        self.starts = 1

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait(5)

    def restart(self) -> None:
        self.process = start_redis(self.port, self.log_dir / f"redis-{self.starts}.log")
        self.starts += 1

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(5)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    yield server
    server.stop()


def notification(user: str, label: str) -> Notification:
    trigger = f"{user}-{label}-{uuid.uuid4().hex[:6]}"
    return Notification(
        notification_id=notification_id_for(trigger), user_id=user, session_id="s1",
        items=[RecommendedItem(item_id=f"item-{label}", score=1.0)], model_name="test", model_version="1",
        reason=label, trigger_event_id=trigger, trigger_event_type="add_to_cart", trigger_ts=utc_now(),
    )


def queued_ids(client: redis.Redis, prefix: str) -> Counter:
    """Every notification id in every user's queue, with how often it appears."""
    found: Counter = Counter()
    for key in client.scan_iter(match=f"{prefix}push:*:queue", count=1000):
        for _, fields in client.xrange(key):
            found[json.loads(fields[b"n"])["notification_id"]] += 1
    return found


def wait_for(predicate, timeout_s: float) -> float:
    """Seconds until `predicate()` held (fails after `timeout_s`)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout_s, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def test_the_kafka_loop_waits_out_a_frozen_and_a_restarted_redis(settings, own_redis):
    s: Settings = settings.model_copy(update={
        "redis_url": f"redis://127.0.0.1:{own_redis.port}/0", "redis_socket_timeout_s": 1.0,
        "redis_connect_timeout_s": 0.5, "outage_backoff_s": 0.1, "outage_backoff_max_s": 1.0,
    })
    ensure_topics(s)
    options = NotifierSettings(consumer_group=f"notifier-{uuid.uuid4().hex[:8]}", heartbeat_s=0.5,
                               token_secret=SECRET, **NO_FATIGUE)
    store = redis.Redis.from_url(s.redis_url, socket_timeout=1)
    producer = make_producer(s, "outage-test")
    test_started = time.monotonic()

    def publish(label: str, count: int) -> list[str]:
        batch = [notification(f"u{n}-{label}", label) for n in range(count)]
        for n in batch:
            producer.send(s.notifications_topic, key=n.user_id.encode(), value=encode_notification(n))
        producer.flush(10)
        return [n.notification_id for n in batch]

    def health(path: str) -> tuple[int, dict]:
        answer = httpx.get(f"{base}{path}", timeout=5)
        return answer.status_code, answer.json()

    def all_queued(expected: list[str]) -> bool:
        try:
            return set(queued_ids(store, s.key_prefix)) >= set(expected)
        except redis.RedisError:
            return False

    def publish_to(user: str, label: str) -> str:
        n = notification(user, label)
        producer.send(s.notifications_topic, key=user.encode(), value=encode_notification(n))
        producer.flush(10)
        return n.notification_id

    def stream_url(user: str) -> str:
        return f"{base}/v1/users/{user}/notifications/stream?token={mint_user_token(SECRET, user, 300)}"

    app = create_app(s, options)
    metrics = app.state.metrics
    try:
        with serve(app) as base:
            before = publish("before", 5)
            wait_for(lambda: all_queued(before), 20)
            assert health("/healthz") == (200, {"status": "ok", "consuming": True})

            # Frozen for 6 s, longer than the 1 s socket timeout: commands time out and the loop waits.
            own_redis.signal(signal.SIGSTOP)
            during_freeze = publish("frozen", 5)
            time.sleep(6)
            live_status, live = health("/healthz")
            ready_status, ready = health("/readyz")
            own_redis.signal(signal.SIGCONT)
            assert live_status == 200 and live["status"] == "degraded" and "outage" in live["reason"]
            assert ready_status == 503 and ready["status"] == "degraded"
            after_freeze = publish("thawed", 3)
            freeze_recovery_s = wait_for(lambda: all_queued(before + during_freeze + after_freeze), 20)
            wait_for(lambda: health("/healthz")[1]["status"] == "ok", 10)
            assert health("/readyz")[0] == 200
            counts = queued_ids(store, s.key_prefix)
            assert set(counts) == set(before + during_freeze + after_freeze)
            assert max(counts.values()) == 1

            # A browser's open stream ends cleanly when Redis dies, and resumes after the restart.
            first_push = publish_to("sse-user", "first")
            stream: dict[str, object] = {}
            reader = threading.Thread(target=lambda: stream.update(
                result=read_sse(stream_url("sse-user"), count=99, timeout_s=15)))
            reader.start()
            wait_for(lambda: metrics.value("streamrec_notifier_sse_delivered_total") >= 1, 10)

            # Killed and restarted on the same port: without persistence the new Redis starts empty.
            own_redis.kill()
            reader.join(10)
            assert not reader.is_alive()  # the stream ended instead of hanging
            status, seen = stream["result"]
            assert status == 200 and [e.id for e in seen if e.event == "notification"] and \
                json.loads(seen[-1].data)["notification_id"] == first_push
            during_kill = publish("killed", 5)
            time.sleep(3)
            live_status, live = health("/healthz")
            ready_status, _ = health("/readyz")
            reconnect_while_down = httpx.get(stream_url("sse-user"), headers={"Last-Event-ID": seen[-1].id},
                                             timeout=5)
            own_redis.restart()
            assert live_status == 200 and live["status"] == "degraded"
            assert ready_status == 503
            assert reconnect_while_down.status_code == 503
            after_kill = publish("restarted", 3)
            kill_recovery_s = wait_for(lambda: all_queued(during_kill + after_kill), 20)
            wait_for(lambda: health("/healthz")[1]["status"] == "ok", 10)
            second_push = publish_to("sse-user", "second")
            _, resumed = read_sse(stream_url("sse-user"), count=1, timeout_s=10,
                                  headers={"Last-Event-ID": seen[-1].id})
            assert [json.loads(e.data)["notification_id"] for e in resumed] == [second_push]
            counts = queued_ids(store, s.key_prefix)
            assert set(counts) == set(during_kill + after_kill + [second_push])
            assert max(counts.values()) == 1
            assert metrics.value("streamrec_notifier_outage") == 0
            assert metrics.value("streamrec_notifier_outage_retries_total") > 0
            assert any(t.name == "notifier-consumer" and t.is_alive() for t in threading.enumerate())
    finally:
        producer.close()
    print(f"recovery after SIGCONT: {freeze_recovery_s:.2f}s, after restart: {kill_recovery_s:.2f}s, "
          f"test {time.monotonic() - test_started:.1f}s")
    assert time.monotonic() - test_started < 60
