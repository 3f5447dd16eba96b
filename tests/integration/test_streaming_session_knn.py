"""Streaming V-SKNN in Redis gives the offline V-SKNN's lists on the same events, however the events arrive and
however many workers write them."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import redis

from model.baselines.session_knn import SessionKNNRecommender
from model.baselines.streaming_session_knn import StreamingSessionKNNRecommender
from model.interactions import events_to_frame
from model.recommender import RecommendationRequest
from producers.simulator import simulate
from streamrec.session_store import SessionContext

pytestmark = pytest.mark.integration

PARAMS = {"k": 15, "sample_size": 40, "weighting": "linear", "max_len": 8}


@pytest.fixture(scope="module")
def traffic():
    world, events = simulate(6000, seed=11)
    frame = events_to_frame(events)
    products = sorted(frame.loc[frame["kind"] == "product", "item_id"].dropna().unique())
    rng = random.Random(5)
    queries = []
    for n in range(40):  # new sessions (not in the index), some with items nobody has seen
        items = tuple(rng.sample(products, rng.randint(1, 6))) + (("never-seen",) if n % 7 == 0 else ())
        context = SessionContext(user_id=f"q{n}", session_id=f"query-{n}", recent_items=items)
        exclude = frozenset(items[:1]) if n % 3 == 0 else frozenset()
        queries.append(RecommendationRequest(f"q{n}", 10, context=context, exclude=exclude))
    return events, frame, queries


def _streaming(redis_url: str, prefix: str, **overrides) -> StreamingSessionKNNRecommender:
    return StreamingSessionKNNRecommender(redis.Redis.from_url(redis_url), prefix, **{**PARAMS, **overrides})


def _assert_same(offline, streaming, queries):
    for request, got in zip(queries, streaming.recommend_batch(queries), strict=True):
        want = offline.recommend(request)
        assert [s.item_id for s in got] == [s.item_id for s in want], request.context.recent_items
        assert np.allclose([s.score for s in got], [s.score for s in want], rtol=0, atol=1e-12)


@pytest.mark.parametrize("idf", [False, True])
def test_streaming_lists_equal_the_offline_ones_on_the_same_events(traffic, settings, idf):
    events, frame, queries = traffic
    offline = SessionKNNRecommender(**PARAMS, idf=idf).fit(frame)
    streaming = _streaming(settings.redis_url, settings.key_prefix, idf=idf)
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)  # arrival order must not matter: every write is order-free
    for start in range(0, len(shuffled), 250):
        streaming.observe(shuffled[start:start + 250], [])
    streaming.observe(shuffled[:500], [])  # a redelivered batch changes nothing
    assert sum(1 for r in streaming.recommend_batch(queries) if r and r[0].score > 0) > 20  # neighbours found
    _assert_same(offline, streaming, queries)
    assert streaming.recommend(RecommendationRequest("t", 3, kind="tool")) == []


def test_two_workers_writing_their_own_users_build_one_shared_index(traffic, settings):
    events, frame, queries = traffic
    offline = SessionKNNRecommender(**PARAMS).fit(frame)
    workers = [_streaming(settings.redis_url, settings.key_prefix) for _ in range(2)]
    partitions = [[e for e in events if hash(e.user_id) % 2 == w] for w in range(2)]

    def run(worker, own):
        for start in range(0, len(own), 100):
            worker.observe(own[start:start + 100], [])

    threads = [threading.Thread(target=run, args=(w, own)) for w, own in zip(workers, partitions, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in workers:  # either worker answers with every session, its own and the other's
        _assert_same(offline, worker, queries)


def test_a_session_is_a_neighbour_from_its_first_event_but_never_its_own(settings):
    from streamrec.events import PageView

    model = _streaming(settings.redis_url, settings.key_prefix, k=5, sample_size=10)
    model.observe([PageView(user_id="a", session_id="sa", item_id="x", ts="2026-01-01T00:00:00Z"),
                   PageView(user_id="a", session_id="sa", item_id="y", ts="2026-01-01T00:00:05Z")], [])
    context = SessionContext(user_id="b", session_id="sb", recent_items=("x",))
    assert [s.item_id for s in model.recommend(RecommendationRequest("b", 1, context=context))] in (["x"], ["y"])
    model.observe([PageView(user_id="b", session_id="sb", item_id="x", ts="2026-01-01T00:01:00Z")], [])
    own = SessionContext(user_id="b", session_id="sb", recent_items=("x",))
    ranked = model.recommend(RecommendationRequest("b", 2, context=own, exclude=frozenset({"x"})))
    assert [s.item_id for s in ranked] == ["y"] and ranked[0].score > 0  # from sa; sb itself does not vote


def _page_view(session: str, item: str, ts_ms: int):
    from datetime import UTC, datetime

    from streamrec.events import PageView

    return PageView(event_id=f"{session}-{item}", user_id=f"u-{session}", session_id=session, item_id=item,
                    ts=datetime.fromtimestamp(ts_ms / 1000, UTC))


def test_the_popularity_fill_keeps_the_lowest_ids_of_a_long_tie_at_the_cut(settings):
    """The tie read at the cut is limited to `popular_size` members: it must still keep the exact order."""
    streaming = _streaming(settings.redis_url, settings.key_prefix, popular_size=3, popular_refresh_ms=0)
    tail = [_page_view(f"s{n}", f"item-{n:02d}", 1000 + n) for n in range(30)]  # 30 items tied at one session
    streaming.observe([*tail, _page_view("a", "item-99", 5000), _page_view("b", "item-99", 6000)], [])
    cold = RecommendationRequest("q", 3, context=SessionContext(user_id="q", session_id="q", recent_items=("new",)))
    assert [s.item_id for s in streaming.recommend(cold)] == ["item-99", "item-00", "item-01"]
    streaming.observe([_page_view("c", "item-05", 7000), _page_view("d", "item-05", 8000)], [])
    assert [s.item_id for s in streaming.recommend(cold)] == ["item-05", "item-99", "item-00"]  # refreshed at once


def test_the_fill_is_re_read_once_event_time_moves_on_by_the_refresh_interval(settings):
    streaming = _streaming(settings.redis_url, settings.key_prefix, popular_size=2, popular_refresh_ms=60_000)
    streaming.observe([_page_view("a", "x", 1000), _page_view("b", "x", 2000), _page_view("c", "y", 3000)], [])
    cold = RecommendationRequest("q", 2, context=SessionContext(user_id="q", session_id="q", recent_items=("new",)))
    assert [s.item_id for s in streaming.recommend(cold)] == ["x", "y"]
    streaming.observe([_page_view(s, "z", 30_000) for s in ("d", "e", "f")], [])  # 27 s later: the fill is kept
    assert [s.item_id for s in streaming.recommend(cold)] == ["x", "y"]
    streaming.observe([_page_view("g", "z", 70_000)], [])  # 69 s after the read: re-read
    assert [s.item_id for s in streaming.recommend(cold)] == ["z", "x"]


def test_resp2_and_resp3_connections_give_the_same_lists(traffic, settings):
    events, frame, queries = traffic
    lists = []
    for protocol in (2, 3):
        client = redis.Redis.from_url(settings.redis_url, protocol=protocol)
        streaming = StreamingSessionKNNRecommender(client, f"{settings.key_prefix}p{protocol}:", **PARAMS)
        for start in range(0, len(events), 500):
            streaming.observe(events[start:start + 500], [])
        lists.append([[(s.item_id, s.score) for s in r] for r in streaming.recommend_batch(queries)])
    assert lists[0] == lists[1]
    assert any(r and r[0][1] > 0 for r in lists[0])
