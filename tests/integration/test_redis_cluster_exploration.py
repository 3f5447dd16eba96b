"""The exploration budget on a Redis Cluster: the same young items, draws and clicks as on one server, with its
per-item state spread over the masters."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from model.exploration import YoungItemExploration
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from producers.simulator import simulate
from streamrec.redis_connection import redis_client
from streamrec.session_store import SessionContext
from tests.cluster_fixtures import cluster_settings_fixture, redis_cluster_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


class Listed(Recommender):
    name = "listed"

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return [ScoredItem(f"not-an-item-{i}", 1.0) for i in range(request.k)]


def test_exploration_on_the_cluster_chooses_as_on_one_server(settings, redis_cluster, cluster_settings):
    cluster_prefix = cluster_settings.key_prefix
    _, events = simulate(6000, seed=12)  # two simulated days and more: items first seen late are young
    one = YoungItemExploration(Listed(), redis.Redis.from_url(settings.redis_url), settings.key_prefix, seed=3)
    cluster = YoungItemExploration(Listed(), redis_client(redis_cluster.url), cluster_prefix, seed=3)
    chosen: list[tuple[list[str], list[str]]] = []
    for start in range(0, len(events), 200):
        batch = events[start:start + 200]
        one.observe(batch, [None] * len(batch))
        cluster.observe(batch, [None] * len(batch))
        views = [e for e in batch if e.type == "page_view" and e.item_id]
        requests = [RecommendationRequest(e.user_id, 5, trigger_item=e.item_id, now_ms=e.ts_ms,
                                          context=SessionContext(user_id=e.user_id, session_id=e.session_id))
                    for e in views[:20]]
        chosen.append(([s.item_id for r in one.recommend_batch(requests) for s in r],
                       [s.item_id for r in cluster.recommend_batch(requests) for s in r]))
        if views:  # a later view by a notified user, to count clicks on both alike
            late = views[-1].model_copy(update={"ts": views[-1].ts + timedelta(minutes=1)})
            one.observe([late], [None])
            cluster.observe([late], [None])
    assert all(a == b for a, b in chosen)
    explored = sum(1 for a, _ in chosen for item in a if not item.startswith("not-an-item"))
    assert explored > 20  # young items were found and placed
    holders = {redis_cluster.node_of(f"{cluster_prefix}{{explore:{s}}}:first-seen").port for s in range(16)}
    assert len(holders) >= 2
