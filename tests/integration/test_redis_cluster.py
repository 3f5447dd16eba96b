"""On a Redis Cluster (three local masters) the session store and the streaming session-kNN answer as on one
server, the script runner spreads a batch over the nodes and keeps the caller's order, a master that was killed
and restarted (empty, without its scripts) is recovered from, and with replicas a killed master's replica takes over
with its data."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from importlib.resources import files

import pytest
import redis
from redis.cluster import RedisCluster

from model.baselines.streaming_session_knn import StreamingSessionKNNRecommender
from model.recommender import RecommendationRequest
from producers.simulator import simulate
from streamrec.redis_connection import CrossSlotCall, LuaScript, ScriptCall, ScriptRunner, redis_client
from streamrec.session_store import FilterQuery, SentNotification, SessionContext, SessionStore
from tests.cluster_fixtures import LocalRedisCluster, cluster_settings_fixture, redis_cluster_fixture, start_cluster  # noqa: F401 (redis_cluster)

pytestmark = pytest.mark.integration

APPLY_EVENT_SHA = LuaScript(files("streamrec").joinpath("lua/apply_event.lua").read_text()).sha
# Which node answered: the script returns its key, its argument and the server's port.
WHERE = LuaScript("return {KEYS[1], ARGV[1], string.match(redis.call('INFO', 'server'), 'tcp_port:(%d+)')}")


@pytest.fixture(scope="module")
def traffic():
    _world, events = simulate(3000, seed=23)
    return events


@pytest.fixture
def cluster_client(redis_cluster: LocalRedisCluster) -> RedisCluster:
    return redis_client(redis_cluster.url, socket_timeout=5, socket_connect_timeout=2)




def _masters_holding(cluster: LocalRedisCluster, prefix: str) -> int:
    return sum(1 for node in cluster.masters() if next(node.client().scan_iter(match=f"{prefix}*", count=1000), None))


def test_a_batch_of_many_users_gives_the_same_contexts_as_on_one_server(
    traffic, settings, redis_client, cluster_settings, redis_cluster
):
    one = SessionStore(redis_client, settings)
    cluster = SessionStore.from_settings(cluster_settings)
    assert isinstance(cluster.redis, RedisCluster)
    assert len({e.user_id for e in traffic}) > 50
    for start in range(0, len(traffic), 400):
        batch = traffic[start:start + 400]
        assert cluster.apply_batch(batch) == one.apply_batch(batch)
    assert _masters_holding(redis_cluster, cluster_settings.key_prefix) == 3  # spread over every master

    redelivered = traffic[1000:1400]
    again = cluster.apply_batch(redelivered)
    assert all(c.duplicate for c in again)
    assert again == one.apply_batch(redelivered)

    users = sorted({e.user_id for e in traffic})
    for store in (one, cluster):
        store.record_notifications(SentNotification(u, f"trigger-{u}", ("product:p1",), traffic[-1].ts_ms)
                                   for u in users[::2])
    queries = [FilterQuery(u, f"trigger-{u}", traffic[-1].ts_ms) for u in users]
    assert cluster.filters_batch(queries) == one.filters_batch(queries)
    assert [cluster.latest_context(u) for u in users[:20]] == [one.latest_context(u) for u in users[:20]]
    assert sorted(cluster.known_users()) == sorted(one.known_users()) == users


def test_the_runner_sends_each_node_its_calls_and_answers_in_the_callers_order(redis_cluster, cluster_client):
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    keys = [f"{prefix}{{u:{n}}}:k" for n in range(60)]
    random.Random(1).shuffle(keys)
    replies = ScriptRunner(cluster_client).run([ScriptCall(WHERE, [key], [str(n)]) for n, key in enumerate(keys)])
    assert [(k.decode(), int(a)) for k, a, _ in replies] == [(key, n) for n, key in enumerate(keys)]
    assert [int(port) for *_, port in replies] == [redis_cluster.node_of(key).port for key in keys]
    assert len({port for *_, port in replies}) == 3
    with pytest.raises(CrossSlotCall, match="co:item-1"):
        ScriptRunner(cluster_client).run([ScriptCall(WHERE, [f"{prefix}{{u:1}}:observed", f"{prefix}co:item-1"], [])])


def test_a_killed_master_is_an_outage_and_once_restarted_empty_the_batch_goes_through(
    traffic, cluster_settings, redis_cluster
):
    store = SessionStore.from_settings(cluster_settings)
    first, second = traffic[:300], traffic[300:600]
    store.apply_batch(first)
    victim_user = second[0].user_id
    victim = redis_cluster.node_of(store.keys.user(victim_user))
    victim.kill()
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            store.apply_batch(second)  # the other masters' users were applied: the retry finds them done
    finally:
        victim.start()
        redis_cluster.wait_ok()
    assert victim.client().script_exists(APPLY_EVENT_SHA) == [False]  # restarted without its scripts
    contexts = store.apply_batch(second)
    on_victim = {e.user_id: redis_cluster.node_of(store.keys.user(e.user_id)) is victim for e in second}
    assert any(on_victim.values()) and not all(on_victim.values())
    for event, context in zip(second, contexts, strict=True):
        assert context.duplicate is not on_victim[event.user_id]  # the others were applied by the failed try
    latest = {(c.user_id, c.session_id): c.events for c in contexts}
    for user, session in latest:  # a restarted master without persistence comes back empty: as one server does
        counted = second if on_victim[user] else first + second
        assert latest[user, session] == sum(1 for e in counted if (e.user_id, e.session_id) == (user, session))


def test_streaming_session_knn_gives_the_same_lists_on_the_cluster(traffic, settings, cluster_settings,
                                                                    redis_cluster, cluster_client):
    params = {"k": 15, "sample_size": 40, "max_len": 8, "idf": True, "popular_size": 50}
    one = StreamingSessionKNNRecommender(redis.Redis.from_url(settings.redis_url), settings.key_prefix, **params)
    cluster = StreamingSessionKNNRecommender(cluster_client, cluster_settings.key_prefix, **params)
    for start in range(0, len(traffic), 300):
        one.observe(traffic[start:start + 300], [])
        cluster.observe(traffic[start:start + 300], [])
    items = sorted({e.item_id for e in traffic if getattr(e, "item_id", None)})
    rng = random.Random(4)
    queries = [
        RecommendationRequest(f"q{n}", 10, context=SessionContext(
            user_id=f"q{n}", session_id=f"query-{n}",
            recent_items=tuple(rng.sample(items, rng.randint(1, 5))) + (("never-seen",) if n % 5 == 0 else ())))
        for n in range(30)
    ]
    cold = RecommendationRequest("cold", 10, context=SessionContext(user_id="c", session_id="c", recent_items=("x",)))
    want = [[(s.item_id, s.score) for s in r] for r in one.recommend_batch([*queries, cold])]
    assert [[(s.item_id, s.score) for s in r] for r in cluster.recommend_batch([*queries, cold])] == want
    assert sum(1 for r in want if r and r[0][1] > 0) > 15 and len(want[-1]) == 10  # neighbours, and the fill
    holders = {redis_cluster.node_of(f"{cluster_settings.key_prefix}{{knn:{s}}}:item-sessions").port
               for s in range(16)}
    assert len(holders) >= 2  # the global counts are no longer one hot key


@pytest.fixture(scope="module")
def replicated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """Three masters with a replica each, for failover."""
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster-replicas"), replicas=1)
    yield cluster
    cluster.stop()


def test_when_a_master_dies_its_replica_takes_over_and_the_store_goes_on_with_its_data(
    traffic, settings, replicated_cluster
):
    store = SessionStore.from_settings(
        settings.model_copy(update={"redis_url": replicated_cluster.url, "key_prefix": f"test:{uuid.uuid4().hex}:"}))
    first, second = traffic[:300], traffic[300:600]
    store.apply_batch(first)
    victim = replicated_cluster.node_of(store.keys.user(second[0].user_id))
    assert victim.client().wait(1, 5000) == 1  # its replica has every write
    victim.kill()
    replicated_cluster.wait_ok()  # the replica was promoted
    contexts = store.apply_batch(second)  # a stale slot map: connection refused, map read again, the new master
    assert not any(c.duplicate for c in contexts)
    latest = {(c.user_id, c.session_id): c.events for c in contexts}
    for (user, session), events in latest.items():
        assert events == sum(1 for e in first + second if (e.user_id, e.session_id) == (user, session))
