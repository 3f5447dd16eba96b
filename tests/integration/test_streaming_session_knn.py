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
