"""On a Redis Cluster (three local masters) the streaming co-occurrence, tool-transition and tool-session-transition
models hold the same counts and give the same lists as on one server, with their global counts spread over the
nodes; a redelivered batch changes nothing, and a batch that failed on some nodes adds their part once when retried.
"""

from __future__ import annotations

import random

import pytest
import redis
from redis.cluster import RedisCluster

from model.baselines.session_cooccurrence import _OBSERVE as SHARD_OBSERVE
from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.baselines.tool_session_transitions import ToolSessionTransitionRecommender
from model.baselines.tool_transitions import ToolTransitionRecommender
from model.recommender import RecommendationRequest
from producers.simulator import simulate
from streamrec.events import PRODUCT, TOOL, TaskCompleted
from streamrec.redis_connection import SHARDS
from streamrec.session_store import SessionStore
from streamrec.settings import Settings
from tests.cluster_fixtures import LocalRedisCluster, cluster_settings_fixture, redis_cluster_fixture  # noqa: F401 (redis_cluster)

pytestmark = pytest.mark.integration
BATCH = 250


@pytest.fixture(scope="module")
def stream():
    return simulate(3000, seed=41)




class Deployment:
    """The session store and the three models on one Redis (a server or a cluster), fed as the worker feeds them."""

    def __init__(self, settings: Settings) -> None:
        self.store = SessionStore.from_settings(settings)
        client = self.store.redis
        self.cooccurrence = SessionCooccurrenceRecommender(client, settings.key_prefix)
        self.transitions = ToolTransitionRecommender(client, settings.key_prefix)
        self.session_transitions = ToolSessionTransitionRecommender(client, settings.key_prefix)
        self.models = (self.cooccurrence, self.transitions, self.session_transitions)
        self.prefix = settings.key_prefix

    def feed(self, events) -> list:
        contexts = self.store.apply_batch(events)
        for model in self.models:
            model.observe(events, contexts)
        return contexts

    def answers(self, requests) -> list:
        return [[[(s.item_id, s.score) for s in answer] for answer in model.recommend_batch(requests)]
                for model in self.models]

    def counts(self) -> dict[str, dict[bytes, float]]:
        """Every global key of the models (popularity and list shards, applied-event sets) with its contents."""
        client = self.store.redis
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{self.prefix}g:*", count=1000))
        return {k[len(self.prefix):]: dict(client.zrange(k, 0, -1, withscores=True)) for k in keys}


def _requests(events, contexts) -> list[RecommendationRequest]:
    rng = random.Random(9)
    items = sorted({e.item_id for e in events if getattr(e, "item_id", None)})
    requests = []
    for n, (event, context) in enumerate(zip(events, contexts, strict=True)):
        tool = isinstance(event, TaskCompleted)
        item = event.tool_id if tool else getattr(event, "item_id", None)
        if item and n % (3 if tool else 11) == 0:
            exclude = frozenset(rng.sample(items, rng.randint(0, 4)))
            requests.append(RecommendationRequest(event.user_id, rng.choice([3, 10, 40]),
                                                  kind=TOOL if tool else PRODUCT, context=context, exclude=exclude,
                                                  trigger_item=item))
    return requests


def _fed(deployment: Deployment, world, events) -> list:
    deployment.cooccurrence.seed_catalogue(PRODUCT, world.product_ids)
    deployment.cooccurrence.seed_catalogue(TOOL, world.tool_ids)
    contexts = []
    for start in range(0, len(events), BATCH):
        contexts += deployment.feed(events[start:start + BATCH])
    return contexts


def test_the_models_hold_the_same_counts_and_give_the_same_lists_on_the_cluster(
    stream, settings, cluster_settings, redis_cluster
):
    world, events = stream
    one, cluster = Deployment(settings), Deployment(cluster_settings)
    assert isinstance(cluster.store.redis, RedisCluster)
    _fed(one, world, events)
    contexts = _fed(cluster, world, events)
    assert cluster.counts() == one.counts()

    requests = _requests(events, contexts)
    assert sum(r.kind == TOOL for r in requests) > 20 and sum(r.kind == PRODUCT for r in requests) > 100
    want = one.answers(requests)
    assert cluster.answers(requests) == want
    # co-occurrence fills every product list (from popularity where the seeds run out)
    assert all(len(answer) == r.k for answer, r in zip(want[0], requests, strict=True) if r.kind == PRODUCT)
    for item in world.product_ids[:50]:
        assert cluster.cooccurrence.similar_items(item, 10) == one.cooccurrence.similar_items(item, 10)
    for tool in world.tool_ids:
        assert cluster.transitions.similar_items(tool, 5, TOOL) == one.transitions.similar_items(tool, 5, TOOL)
        assert cluster.session_transitions.similar_items(tool, 5) == one.session_transitions.similar_items(tool, 5)

    # Spread: each model's shards on every master, and no popularity key holding most of the items.
    for model in cluster.models:
        kind = model.counts.kinds[0]
        nodes = {redis_cluster.node_of(model.counts.pop_key(kind, s)).port for s in range(SHARDS)}
        assert len(nodes) == 3
        sizes = [cluster.store.redis.zcard(model.counts.pop_key(kind, s)) for s in range(SHARDS)]
        assert max(sizes) < 0.2 * sum(sizes)
    products = sum(cluster.store.redis.zcard(cluster.cooccurrence.counts.pop_key(PRODUCT, s))
                   for s in range(SHARDS))
    assert products <= 600 < len(world.product_ids)  # the seeded catalogue was trimmed over the shards, as before


def test_a_redelivered_batch_changes_nothing_on_one_server_or_the_cluster(stream, settings, cluster_settings):
    world, events = stream
    head = events[:1500]
    for deployment in (Deployment(settings), Deployment(cluster_settings)):
        contexts = _fed(deployment, world, head)
        requests = _requests(head, contexts)
        before, answers = deployment.counts(), deployment.answers(requests)
        deployment.feed(head[500:750])
        deployment.feed(head[1250:1500] + head[0:250])  # the last batch again, and one long ago
        assert deployment.counts() == before
        assert deployment.answers(requests) == answers


class FailsMidway:
    """A script runner whose first batch of shard calls reaches only every other shard, then fails: a node lost
    while the batch was in flight."""

    def __init__(self, runner) -> None:
        self.runner, self.armed = runner, True

    def run(self, calls):
        if self.armed and calls and calls[0].script == SHARD_OBSERVE:
            self.armed = False
            self.runner.run(calls[::2])
            raise redis.exceptions.ConnectionError("lost a node mid-batch")
        return self.runner.run(calls)


def test_a_batch_that_failed_on_some_shards_adds_their_part_once_when_retried(stream, settings, cluster_settings):
    world, events = stream
    clean = Deployment(settings)
    _fed(clean, world, events[:1000])
    broken = Deployment(cluster_settings)
    _fed(broken, world, events[:750])
    batch = events[750:1000]
    contexts = broken.store.apply_batch(batch)
    for model in broken.models:
        model.counts.runner = FailsMidway(model.counts.runner)
        with pytest.raises(redis.exceptions.ConnectionError):
            model.observe(batch, contexts)
    assert broken.counts() != clean.counts()
    broken.feed(batch)  # the worker's retry: the session store sees duplicates, the models their missing shards
    assert broken.counts() == clean.counts()
