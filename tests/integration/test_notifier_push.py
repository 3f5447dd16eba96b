"""The notifier on real Kafka and Redis: who may read a stream, live pushes, Last-Event-ID resume, offline queues."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
import redis

from consumers.notifier.app import create_app
from consumers.notifier.dispatcher import NotificationDispatcher
from consumers.notifier.fatigue import FatigueRules
from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.push_queue import PushQueue
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.tokens import mint_user_token
from streamrec.events import utc_now
from streamrec.kafka_clients import make_producer
from streamrec.notifications import Notification, RecommendedItem, encode_notification, notification_id_for
from streamrec.topics import ensure_topics
from tests.web_helpers import read_sse, serve

pytestmark = pytest.mark.integration
SECRET = "push-test-secret"
NO_FATIGUE = {"max_per_hour": 0, "max_per_day": 0, "min_interval_s": 0, "repeat_window_s": 0, "max_age_s": 0}


def notification(user: str, n: int, items: tuple[str, ...] | None = None) -> Notification:
    trigger = f"{user}-trigger-{n}-{uuid.uuid4().hex[:6]}"
    return Notification(
        notification_id=notification_id_for(trigger), user_id=user, session_id="s1",
        items=[RecommendedItem(item_id=i, score=1.0) for i in (items or (f"item-{n}",))],
        model_name="test", model_version="1", reason=f"reason {n}", trigger_event_id=trigger,
        trigger_event_type="add_to_cart", trigger_ts=utc_now(),
    )


def notifier_settings(**overrides: object) -> NotifierSettings:
    base = {"consumer_group": f"notifier-{uuid.uuid4().hex[:8]}", "token_secret": SECRET, "heartbeat_s": 0.5,
            **NO_FATIGUE}
    return NotifierSettings(**{**base, **overrides})


def stream_url(base: str, user: str, token: str | None = None) -> str:
    token = token if token is not None else mint_user_token(SECRET, user, 300)
    return f"{base}/v1/users/{user}/notifications/stream?token={token}"


def dispatcher_for(settings, options: NotifierSettings, metrics: NotifierMetrics, clock_ms=None):
    queue = PushQueue(redis.Redis.from_url(settings.redis_url), settings.key_prefix, options)
    kwargs = {"clock_ms": clock_ms} if clock_ms else {}
    return NotificationDispatcher(queue, FatigueRules.from_settings(options), metrics, **kwargs)


def test_only_a_valid_token_for_that_very_user_opens_a_stream(settings):
    app = create_app(settings, notifier_settings(), consume=False)
    with serve(app) as base:
        alice = f"{base}/v1/users/alice/notifications/stream"
        assert httpx.get(alice).status_code == 401  # no token
        assert httpx.get(alice, params={"token": mint_user_token("wrong", "alice", 300)}).status_code == 401
        assert httpx.get(alice, params={"token": mint_user_token(SECRET, "alice", -5)}).status_code == 401
        bob_token = mint_user_token(SECRET, "bob", 300)
        assert httpx.get(alice, params={"token": bob_token}).status_code == 403  # bob cannot read alice
        header = {"Authorization": f"Bearer {bob_token}"}
        assert httpx.get(alice, headers=header).status_code == 403
        status, _ = read_sse(stream_url(base, "alice"), count=0, timeout_s=2)
        assert status == 200
        bad_resume = httpx.get(stream_url(base, "alice"), headers={"Last-Event-ID": "x; DROP"})
        assert bad_resume.status_code == 400
    assert app.state.metrics.value("streamrec_notifier_auth_failures_total", reason="token is for another user") == 2


def test_kafka_notifications_reach_the_browser_and_a_reconnect_resumes_after_last_event_id(settings):
    ensure_topics(settings)
    user = f"u-{uuid.uuid4().hex[:6]}"
    sent = [notification(user, n) for n in range(5)]
    producer = make_producer(settings, "test-notifications")

    def publish(batch: list[Notification]) -> None:
        for n in batch:
            producer.send(settings.notifications_topic, key=user.encode(), value=encode_notification(n))
        producer.flush(10)

    app = create_app(settings, notifier_settings())
    metrics = app.state.metrics
    try:
        with serve(app) as base:
            publish(sent[:2])
            status, live = read_sse(stream_url(base, user), count=2, timeout_s=30)
            assert status == 200
            assert [json.loads(e.data)["notification_id"] for e in live] == [n.notification_id for n in sent[:2]]
            assert all(e.event == "notification" and e.id for e in live)

            # Offline: three more arrive and wait in the user's queue.
            publish(sent[2:])
            deadline = time.monotonic() + 30
            while metrics.value("streamrec_notifier_queued_total") < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert metrics.value("streamrec_notifier_queued_total") == 5

            # The browser reconnects with the id of the last event it saw: exactly the missed ones, in order.
            _, resumed = read_sse(stream_url(base, user), count=3, timeout_s=10,
                                  headers={"Last-Event-ID": live[-1].id})
            assert [json.loads(e.data)["notification_id"] for e in resumed] == [n.notification_id for n in sent[2:]]
            # A second tab that saw only the first event resumes from there.
            _, second_tab = read_sse(stream_url(base, user), count=4, timeout_s=10,
                                     headers={"Last-Event-ID": live[0].id})
            assert [e.id for e in second_tab] == [live[1].id] + [e.id for e in resumed]
            # A fresh client without Last-Event-ID gets nothing already delivered.
            _, fresh = read_sse(stream_url(base, user), count=1, timeout_s=2)
            assert fresh == []
            # A redelivered notification (same id) is not pushed twice.
            publish(sent[4:])
            deadline = time.monotonic() + 30
            while metrics.value("streamrec_notifier_duplicates_total") < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert metrics.value("streamrec_notifier_duplicates_total") == 1
    finally:
        producer.close()
    assert metrics.value("streamrec_notifier_consumed_total") == 6
    assert metrics.value("streamrec_notifier_sse_delivered_total") == 2 + 3 + 4


def test_an_offline_users_queue_is_bounded_and_what_expires_is_counted(settings):
    options = notifier_settings(pending_max=3, pending_ttl_s=60)
    metrics_app = create_app(settings, options, consume=False)
    metrics = NotifierMetrics()
    now_ms = int(time.time() * 1000)
    clock = iter(range(now_ms - 10_000, now_ms, 1000))
    dispatcher = dispatcher_for(settings, options, metrics, clock_ms=lambda: next(clock))
    user = f"u-{uuid.uuid4().hex[:6]}"
    batch = [notification(user, n) for n in range(5)]
    outcomes = dispatcher.dispatch_batch(batch)
    assert [o.status for o in outcomes] == ["queued"] * 5
    assert metrics.value("streamrec_notifier_expired_total", reason="queue_full") == 2  # the two oldest

    with serve(metrics_app) as base:
        _, pending = read_sse(stream_url(base, user), count=3, timeout_s=10)
    assert [json.loads(e.data)["notification_id"] for e in pending] == [n.notification_id for n in batch[2:]]


def test_notifications_past_their_ttl_are_counted_when_the_client_returns_or_the_sweeper_runs(settings):
    options = notifier_settings(pending_ttl_s=5)
    app = create_app(settings, options, consume=False)
    metrics = NotifierMetrics()
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    dispatcher = dispatcher_for(settings, options, metrics, clock_ms=lambda: an_hour_ago)
    returning, away = f"back-{uuid.uuid4().hex[:6]}", f"away-{uuid.uuid4().hex[:6]}"
    dispatcher.dispatch_batch([notification(returning, 1), notification(returning, 2), notification(away, 1)])

    with serve(app) as base:
        _, stale = read_sse(stream_url(base, returning), count=1, timeout_s=2)
    assert stale == []  # never shown an hour late
    assert app.state.metrics.value("streamrec_notifier_expired_total", reason="ttl") == 2

    aged, overflow = dispatcher.queue.sweep(int(time.time() * 1000))
    assert (aged, overflow) == (1, 0)  # the user who never came back
    assert dispatcher.queue.sweep(int(time.time() * 1000)) == (0, 0)  # counted once


def test_fatigue_caps_hold_across_batches_and_every_notification_has_one_outcome(settings):
    options = notifier_settings(max_per_hour=2, max_per_day=3, min_interval_s=120, repeat_window_s=86_400)
    metrics = NotifierMetrics()
    start = int(time.time() * 1000)
    now = {"ms": start}
    dispatcher = dispatcher_for(settings, options, metrics, clock_ms=lambda: now["ms"])
    user = f"u-{uuid.uuid4().hex[:6]}"
    minute = 60_000

    def at(offset_min: float, n: Notification) -> str:
        now["ms"] = start + int(offset_min * minute)
        outcome = dispatcher.dispatch_batch([n])[0]
        return outcome.reason or outcome.status

    client = redis.Redis.from_url(settings.redis_url)

    def queued_items() -> list[list[str]]:
        entries = client.xrange(dispatcher.queue.keys.queue(user))
        return [[i["item_id"] for i in json.loads(fields[b"n"])["items"]] for _, fields in entries]

    first = notification(user, 0, ("tent",))
    steps = [
        at(0, first),
        at(1, notification(user, 1, ("stove",))),  # within the quiet interval
        at(3, notification(user, 2, ("tent",))),  # tent was pushed at 0
        at(3, notification(user, 3, ("tent", "lamp"))),  # tent dropped, lamp pushed
        at(6, notification(user, 4, ("boots",))),  # third in the hour
        at(6, first),  # a redelivery
        at(70, notification(user, 5, ("socks",))),  # new hour: allowed, third of the day
        at(140, notification(user, 6, ("poles",))),  # daily cap
    ]
    assert steps == ["queued", "min_interval", "repeat_item", "queued", "hourly_cap", "duplicate", "queued",
                     "daily_cap"]
    assert queued_items() == [["tent"], ["lamp"], ["socks"]]
    # The next day the caps have rolled over and tent is outside the repeat window; the three pushes nobody
    # collected are past their 6-hour TTL, and are counted as they leave the queue.
    steps.append(at(24 * 60 + 1, notification(user, 7, ("tent",))))
    assert steps[-1] == "queued"
    assert queued_items() == [["tent"]]
    assert metrics.value("streamrec_notifier_expired_total", reason="ttl") == 3
    value = metrics.value
    outcomes = value("streamrec_notifier_queued_total") + value("streamrec_notifier_duplicates_total") + sum(
        value("streamrec_notifier_suppressed_total", reason=r)
        for r in ("min_interval", "repeat_item", "hourly_cap", "daily_cap", "stale")
    )
    assert outcomes == value("streamrec_notifier_consumed_total") == len(steps)


def test_a_stale_notification_from_a_lagging_consumer_is_not_pushed(settings):
    options = notifier_settings(max_age_s=600)
    metrics = NotifierMetrics()
    dispatcher = dispatcher_for(settings, options, metrics)
    old = notification("lagging-user", 1).model_copy(update={"created_at": utc_now() - timedelta(hours=2)})
    assert dispatcher.dispatch_batch([old])[0].reason == "stale"
    assert metrics.value("streamrec_notifier_suppressed_total", reason="stale") == 1


def test_an_idle_stream_outlives_the_redis_socket_timeout_and_still_delivers(settings):
    """A quiet user's stream blocks in Redis longer than redis-py's 5 s socket timeout, and must not break."""
    options = notifier_settings(heartbeat_s=6)
    app = create_app(settings, options, consume=False)
    dispatcher = dispatcher_for(settings, options, NotifierMetrics())
    user = f"idle-{uuid.uuid4().hex[:6]}"
    late = notification(user, 1)
    timer = threading.Timer(7.0, lambda: dispatcher.dispatch_batch([late]))
    with serve(app) as base:
        timer.start()
        status, events = read_sse(stream_url(base, user), count=1, timeout_s=15)
    timer.join()
    assert status == 200
    assert [json.loads(e.data)["notification_id"] for e in events] == [late.notification_id]
