"""The notifier on a Redis Cluster (three local masters): the push queue and the push stream deliver what they
deliver on one server for the same notifications, the pending index is spread over the nodes, and expiry sweeps
find users in every shard, also those whose batch never wrote its index entries."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from consumers.notifier.app import create_app
from consumers.notifier.consumer_loop import OUTAGES
from consumers.notifier.dispatcher import NotificationDispatcher
from consumers.notifier.fatigue import FatigueRules
from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.push_keys import PENDING_SHARDS, pending_shard
from consumers.notifier.push_queue import PushQueue
from consumers.notifier.redis_async import async_redis_client
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.tokens import mint_user_token
from streamrec.events import utc_now
from streamrec.notifications import Notification, RecommendedItem, notification_id_for
from streamrec.redis_connection import RedisClient, redis_client
from streamrec.settings import Settings
from tests.cluster_fixtures import LocalRedisCluster, cluster_settings_fixture, redis_cluster_fixture  # noqa: F401 (redis_cluster)
from tests.web_helpers import read_sse, serve

pytestmark = pytest.mark.integration
SECRET = "cluster-push-secret"
MINUTE_MS = 60_000




def options(**overrides: object) -> NotifierSettings:
    return NotifierSettings(token_secret=SECRET, heartbeat_s=0.5, **overrides)


def notification(user: str, n: int, items: tuple[str, ...]) -> Notification:
    trigger = f"{user}-trigger-{n}"
    return Notification(
        notification_id=notification_id_for(trigger), user_id=user, session_id="s1",
        items=[RecommendedItem(item_id=i, score=1.0) for i in items], model_name="test", model_version="1",
        reason=f"reason {n}", trigger_event_id=trigger, trigger_event_type="add_to_cart", trigger_ts=utc_now(),
    )


def traffic(users: int, per_user: int, seed: int) -> list[Notification]:
    """Interleaved notifications for many users, some items repeated (the repeat rule drops them)."""
    rng = random.Random(seed)
    sent = [notification(f"user-{u}", n, tuple(rng.sample(["tent", "stove", "lamp", "boots", "socks"], 2)))
            for u in range(users) for n in range(per_user)]
    rng.shuffle(sent)
    return sent


def dispatcher(settings: Settings, client: RedisClient, notifier: NotifierSettings, clock) -> NotificationDispatcher:
    queue = PushQueue(client, settings.key_prefix, notifier)
    return NotificationDispatcher(queue, FatigueRules.from_settings(notifier), NotifierMetrics(), clock_ms=clock)


def pending_index(client: RedisClient, queue: PushQueue) -> dict[str, float]:
    """Every shard's entries: user -> score."""
    return {user.decode(): score for shard in range(PENDING_SHARDS)
            for user, score in client.zrange(queue.keys.pending_users(shard), 0, -1, withscores=True)}


def queued(client: RedisClient, queue: PushQueue, users: list[str]) -> dict[str, list[tuple[str, str]]]:
    return {u: [(i.decode(), json.loads(f[b"n"])["notification_id"]) for i, f in client.xrange(queue.keys.queue(u))]
            for u in users}


def test_the_push_queue_on_a_cluster_keeps_what_one_server_keeps_and_spreads_its_index(
    settings, cluster_settings, redis_cluster
):
    notifier = options(max_per_hour=3, max_per_day=0, min_interval_s=60, repeat_window_s=3600, max_age_s=0,
                       pending_max=2)
    start = int(time.time() * 1000) - 30 * MINUTE_MS
    sent = traffic(users=60, per_user=6, seed=3)
    one_client = redis.Redis.from_url(settings.redis_url)
    cluster_client = redis_client(cluster_settings.redis_url)
    assert isinstance(cluster_client, RedisCluster)
    runs = []
    for s, client in ((settings, one_client), (cluster_settings, cluster_client)):
        clock = iter(range(start, start + 10 * len(sent) * 1000, 7000))  # the same times on both
        d = dispatcher(s, client, notifier, lambda clock=clock: next(clock))
        outcomes = []
        for at in range(0, len(sent), 100):
            outcomes += d.dispatch_batch(sent[at:at + 100])
        outcomes += d.dispatch_batch(sent[:50])  # redelivered
        runs.append((d, client, outcomes))
    (one, one_client, one_outcomes), (cluster, cluster_client, cluster_outcomes) = runs
    assert cluster_outcomes == one_outcomes
    assert {o.status for o in one_outcomes} == {"queued", "suppressed", "duplicate"}
    assert cluster.metrics.value("streamrec_notifier_expired_total", reason="queue_full") == \
        one.metrics.value("streamrec_notifier_expired_total", reason="queue_full") > 0
    users = sorted({n.user_id for n in sent})
    assert queued(cluster_client, cluster.queue, users) == queued(one_client, one.queue, users)

    index = pending_index(cluster_client, cluster.queue)
    assert sorted(index) == users  # nobody has read anything yet
    assert index == pending_index(one_client, one.queue)
    first_pending = {u: int(entries[0][0].split("-")[0])
                     for u, entries in queued(cluster_client, cluster.queue, users).items()}
    assert index == first_pending  # scored by the oldest undelivered push, none left at the reserved 0
    holders = {redis_cluster.node_of(cluster.queue.keys.pending_users(shard)).port for shard in range(PENDING_SHARDS)}
    assert len(holders) == 3  # no one hot key: the shards' writes and the sweep's reads spread over the masters


def test_the_push_stream_on_a_cluster_delivers_and_resumes_as_on_one_server(settings, cluster_settings,
                                                                              redis_cluster):
    notifier = options(max_per_hour=0, max_per_day=0, min_interval_s=0, repeat_window_s=0, max_age_s=0)
    user = f"reader-{uuid.uuid4().hex[:6]}"
    sent = [notification(user, n, (f"item-{n}",)) for n in range(5)]
    now = int(time.time() * 1000)
    seen = []
    for s, client in ((settings, redis.Redis.from_url(settings.redis_url)),
                      (cluster_settings, redis_client(cluster_settings.redis_url))):
        clock = iter(range(now, now + 100_000, 1000))
        d = dispatcher(s, client, notifier, lambda clock=clock: next(clock))
        d.dispatch_batch(sent[:3])
        if s is cluster_settings:
            for node in redis_cluster.masters():
                node.client().script_flush()  # as after a restart: the async client loads them again
        app = create_app(s, notifier, consume=False)
        with serve(app) as base:
            url = f"{base}/v1/users/{user}/notifications/stream?token={mint_user_token(SECRET, user, 300)}"
            _, first = read_sse(url, count=3, timeout_s=10)
            d.dispatch_batch(sent[3:])
            _, resumed = read_sse(url, count=3, timeout_s=10, headers={"Last-Event-ID": first[1].id})
            _, fresh = read_sse(url, count=1, timeout_s=1.5)
        assert user not in pending_index(client, d.queue)  # all delivered: out of the index
        seen.append(([(e.id, json.loads(e.data)["notification_id"]) for e in first + resumed], fresh))
    assert seen[1] == seen[0]
    ids, fresh = seen[1]
    assert [nid for _, nid in ids] == [n.notification_id for n in sent[:3] + sent[2:]]
    assert fresh == []


def test_the_sweep_counts_expired_pushes_in_every_shard_on_the_cluster(cluster_settings, redis_cluster):
    notifier = options(pending_ttl_s=5, max_per_hour=0, max_per_day=0, min_interval_s=0, repeat_window_s=0,
                       max_age_s=0)
    client = redis_client(cluster_settings.redis_url)
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    d = dispatcher(cluster_settings, client, notifier, lambda: an_hour_ago)
    away = [f"away-{n}" for n in range(40)]
    d.dispatch_batch([notification(u, n, (f"item-{n}",)) for u in away for n in range(2)])
    # A batch that stopped after the users' scripts (a crash before it settled): its index entries stay reserved.
    lost = [f"crashed-{n}" for n in range(10)]
    d.queue.reserve(lost)
    for u in lost:
        d.queue.enqueue(u, f"n-{u}", b'{"n": 1}', [], an_hour_ago)
    pending_index_before = pending_index(client, d.queue)
    assert sorted(pending_index_before) == sorted(away + lost)
    assert {pending_index_before[u] for u in lost} == {0.0}
    assert len({redis_cluster.node_of(d.queue.keys.index_keys(u)[0]).port for u in away + lost}) == 3

    # One sweep reads every shard, up to `limit` users each, and counts each user's expired pushes once.
    per_shard = Counter(pending_shard(u) for u in away + lost)
    assert len(per_shard) == PENDING_SHARDS
    aged, overflow = d.queue.sweep(int(time.time() * 1000), limit=2)
    left = Counter(pending_shard(u) for u in pending_index(client, d.queue))
    assert all(left[shard] == max(0, count - 2) for shard, count in per_shard.items())
    assert (aged, overflow) == (sum(1 if u in lost else 2 for u in pending_index_before
                                    if u not in pending_index(client, d.queue)), 0)
    while pending_index(client, d.queue):
        more, _ = d.queue.sweep(int(time.time() * 1000), limit=2)
        aged += more
    assert aged == 2 * len(away) + len(lost)
    assert d.queue.sweep(int(time.time() * 1000)) == (0, 0)


def test_a_late_nothing_pending_snapshot_does_not_drop_a_newer_push_from_the_index(cluster_settings):
    client = redis_client(cluster_settings.redis_url)
    queue = PushQueue(client, cluster_settings.key_prefix, options(pending_ttl_s=5))
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    stale = queue.enqueue("carol", "n-0", None, [], an_hour_ago)  # suppressed: nothing pending
    assert stale.pending.pending_ms == ""
    queue.record("carol", "n-1", b'{"n": 1}', [], an_hour_ago + 1)
    queue.settle([stale.pending])  # arrives last, as from a slower notifier instance
    assert pending_index(client, queue) == {"carol": float(an_hour_ago + 1)}
    assert queue.sweep(int(time.time() * 1000)) == (1, 0)
    assert pending_index(client, queue) == {}


def test_users_in_the_one_key_index_of_earlier_versions_are_moved_into_the_shards(cluster_settings):
    client = redis_client(cluster_settings.redis_url)
    queue = PushQueue(client, cluster_settings.key_prefix, options(pending_ttl_s=3600))
    now = int(time.time() * 1000)
    users = [f"old-{n}" for n in range(30)]
    for n, user in enumerate(users):  # queued by an earlier version: its index was one key
        queue.enqueue(user, f"n-{user}", b'{"n": 1}', [], now - n * MINUTE_MS)
        client.zadd(queue.keys.legacy_pending(), {user: now - n * MINUTE_MS})
    client.zadd(queue.keys.legacy_pending(), {"delivered-long-ago": now - 7_200_000})
    assert queue.sweep(now, limit=20) == (0, 0)  # none is past its hour yet
    assert queue.sweep(now, limit=20) == (0, 0)
    assert client.exists(queue.keys.legacy_pending()) == 0
    assert pending_index(client, queue) == {user: float(now - n * MINUTE_MS) for n, user in enumerate(users)}


def test_the_async_client_is_a_cluster_client_for_a_cluster_url_and_one_servers_otherwise():
    cluster = async_redis_client("redis+cluster://127.0.0.1:7000")
    assert isinstance(cluster, AsyncRedisCluster)
    tls = async_redis_client("rediss+cluster://127.0.0.1:7000")
    assert isinstance(tls, AsyncRedisCluster) and tls.get_connection_kwargs()["connection_class"].__name__ == \
        "SSLConnection"
    assert type(async_redis_client("redis://127.0.0.1:6379/0")) is aioredis.Redis
    with pytest.raises(ValueError, match="'http'") as refused:
        async_redis_client("http://user:hunter2@127.0.0.1:6379")
    assert "hunter2" not in str(refused.value)


def test_a_killed_master_is_an_outage_for_the_kafka_loop_and_a_503_for_a_new_stream(cluster_settings,
                                                                                    redis_cluster):
    notifier = options(max_per_hour=0, max_per_day=0, min_interval_s=0, repeat_window_s=0, max_age_s=0)
    s = cluster_settings.model_copy(update={"redis_socket_timeout_s": 1.0, "redis_connect_timeout_s": 0.5})
    client = redis_client(s.redis_url, socket_timeout=1, socket_connect_timeout=0.5)
    d = dispatcher(s, client, notifier, lambda: int(time.time() * 1000))
    victim = redis_cluster.node_of(d.queue.keys.queue("victim"))
    sent = notification("victim", 1, ("tent",))
    app = create_app(s, notifier, consume=False)
    with serve(app) as base:
        url = f"{base}/v1/users/victim/notifications/stream?token={mint_user_token(SECRET, 'victim', 300)}"
        victim.kill()
        try:
            with pytest.raises(OUTAGES):
                d.dispatch_batch([sent])
            answer = httpx.get(url, headers={"Last-Event-ID": "1-0"}, timeout=60)
            assert answer.status_code == 503, answer.text
            # Once the others call it failed, they answer CLUSTERDOWN for every slot: an outage too (a
            # ResponseError, and no fault of a Last-Event-ID).
            other = next(n for n in redis_cluster.masters() if n is not victim)
            deadline = time.monotonic() + 30
            while other.client().cluster("info")["cluster_state"] != "fail":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            elsewhere = next(u for u in (f"user-{n}" for n in range(100))
                             if redis_cluster.node_of(d.queue.keys.queue(u)) is other)
            with pytest.raises(OUTAGES):
                d.dispatch_batch([notification(elsewhere, 1, ("tent",))])
            token = mint_user_token(SECRET, elsewhere, 300)
            answer = httpx.get(f"{base}/v1/users/{elsewhere}/notifications/stream?token={token}",
                               headers={"Last-Event-ID": "1-0"}, timeout=60)
            assert answer.status_code == 503, answer.text
        finally:
            victim.start()
            redis_cluster.wait_ok()
        assert d.dispatch_batch([sent])[0].status == "queued"  # restarted empty: the redelivery goes through
        _, events = read_sse(url, count=1, timeout_s=10)
    assert [json.loads(e.data)["notification_id"] for e in events] == [sent.notification_id]
