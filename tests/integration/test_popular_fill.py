"""The co-occurrence family's popularity fill reads each shard's share of the first n, not each shard's first n, and
must still give the overall first n exactly: when the counts are spread by hash, and when one shard holds far more
than its share (it is then read again in full)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.recommender import RecommendationRequest
from streamrec.events import PRODUCT, PageView
from streamrec.redis_connection import SHARDS, shard_of
from streamrec.session_store import SessionContext

pytestmark = pytest.mark.integration


def _items_of_shard(shard: int, count: int, start: int = 0) -> list[str]:
    found, i = [], start
    while len(found) < count:
        if shard_of(f"p{i}") == shard:
            found.append(f"p{i}")
        i += 1
    return found


def _fill(model: SessionCooccurrenceRecommender, k: int) -> list[str]:
    """A request with no seeds: the list is the popularity fill alone."""
    return [s.item_id for s in model.recommend(RecommendationRequest("u", k, PRODUCT))]


def _popularity(model: SessionCooccurrenceRecommender, redis_client, scores: dict[str, float]) -> None:
    for item, score in scores.items():
        redis_client.zadd(model.counts.pop_key(PRODUCT, shard_of(item)), {item: score})


def _expected(scores: dict[str, float], k: int) -> list[str]:
    """ZREVRANGE's order over the union: score, then member, descending."""
    return [item for item, _ in sorted(scores.items(), key=lambda p: (p[1], p[0]), reverse=True)[:k]]


def test_the_fill_is_the_overall_first_k_when_counts_are_spread(settings, redis_client):
    model = SessionCooccurrenceRecommender(redis_client, settings.key_prefix)
    scores = {f"p{i}": float((i * 7919) % 1000) for i in range(3000)}  # ties too: the member breaks them
    _popularity(model, redis_client, scores)
    for k in (1, 20, 100):
        assert _fill(model, k) == _expected(scores, k)


def test_a_shard_holding_the_whole_top_is_read_again_in_full(settings, redis_client):
    model = SessionCooccurrenceRecommender(redis_client, settings.key_prefix)
    crowded = _items_of_shard(3, 150)
    scores = {item: 1000.0 - n for n, item in enumerate(crowded)}  # the 150 most popular all live in shard 3
    scores |= {item: 10.0 for shard in range(SHARDS) if shard != 3 for item in _items_of_shard(shard, 20, 10_000)}
    _popularity(model, redis_client, scores)
    assert _fill(model, 100) == _expected(scores, 100)
    assert _fill(model, 100) == crowded[:100]


def _views(item: str, ts_ms: int, count: int = 1) -> tuple[list[PageView], list[SessionContext]]:
    ts = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    events = [PageView(user_id="v", session_id="s", item_id=item, ts=ts) for _ in range(count)]
    return events, [SessionContext(user_id="v", session_id="s", recent_items=(item,))] * count


def test_the_fill_is_kept_for_the_refresh_span_of_event_time_then_read_again(settings, redis_client):
    model = SessionCooccurrenceRecommender(redis_client, settings.key_prefix, popular_refresh_ms=60_000)
    scores = {f"p{i}": (600 - i) / 10 for i in range(599)} | {"p599": 0.0}  # more than one read's share
    _popularity(model, redis_client, scores)
    start = 1_800_000_000_000
    model.observe(*_views("p0", start))
    assert _fill(model, 3) == ["p0", "p1", "p2"]
    model.observe(*_views("p599", start + 59_000, count=100))  # now the most viewed, 59 s of event time later
    assert _fill(model, 3) == ["p0", "p1", "p2"], "kept: the stream has moved on by less than the refresh span"
    model.observe(*_views("p1", start + 61_000))
    assert _fill(model, 3)[0] == "p599", "read again once 60 s of event time passed"
    model.observe(*_views("p598", start + 62_000, count=200))
    assert _fill(model, 3)[0] == "p599", "kept again"
    assert _fill(model, 60)[0] == "p598", "a deeper fill than the one kept is read afresh, not cut short"
