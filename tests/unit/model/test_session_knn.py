"""V-SKNN session-kNN: neighbours vote for their items, recent sessions and recent items count more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from model.baselines.session_knn import SessionKNNRecommender
from model.recommender import RecommendationRequest
from streamrec.session_store import SessionContext

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(sessions: list[list[str]], start_minutes: list[int] | None = None) -> pd.DataFrame:
    rows = []
    for s, items in enumerate(sessions):
        start = T0 + timedelta(minutes=(start_minutes[s] if start_minutes else s * 10))
        for pos, item in enumerate(items):
            rows.append({"session_id": f"s{s}", "item_id": item, "ts": start + timedelta(seconds=pos)})
    return pd.DataFrame(rows)


def request(recent_newest_first: tuple[str, ...], k: int = 3, exclude: frozenset[str] = frozenset()):
    context = SessionContext(user_id="u", session_id="now", recent_items=recent_newest_first)
    return RecommendationRequest(user_id="u", k=k, context=context, exclude=exclude)


def clustered_sessions() -> list[list[str]]:
    a = [["a1", "a2", "a3"], ["a2", "a4"], ["a1", "a4", "a5"]] * 5
    b = [["b1", "b2"], ["b2", "b3", "b4"], ["b1", "b3"]] * 5
    return a + b


def test_recommends_items_from_sessions_like_the_current_one():
    knn = SessionKNNRecommender(k=10).fit(frame(clustered_sessions()))
    recs = knn.recommend(request(("a1",), k=3))
    assert len(recs) == 3
    assert all(r.item_id.startswith("a") for r in recs)
    assert recs[0].score >= recs[1].score >= recs[2].score


def test_the_newest_item_outweighs_older_ones():
    knn = SessionKNNRecommender(k=5, weighting="linear").fit(frame(clustered_sessions()))
    recs = knn.recommend(request(("b1", "a1"), k=2))  # b1 is newest
    assert all(r.item_id.startswith("b") for r in recs)


def test_only_the_most_recent_candidate_sessions_are_compared():
    # Frame rows out of time order on purpose: recency must come from ts, not row order.
    sessions = [["x", "new"], ["x", "old"]]
    knn = SessionKNNRecommender(k=1, sample_size=1).fit(frame(sessions, start_minutes=[60, 0]))
    recs = knn.recommend(request(("x",), k=2))
    assert recs[0].item_id in {"x", "new"}
    assert "old" not in [r.item_id for r in recs if r.score > 0]


def test_excluded_items_are_never_returned():
    knn = SessionKNNRecommender().fit(frame(clustered_sessions()))
    recs = knn.recommend(request(("a1",), k=4, exclude=frozenset({"a1", "a2"})))
    assert len(recs) == 4
    assert not {"a1", "a2"} & {r.item_id for r in recs}


def test_cold_session_falls_back_to_popular_items():
    knn = SessionKNNRecommender().fit(frame(clustered_sessions()))
    for context in (("never-seen",), ()):
        recs = knn.recommend(request(context, k=3))
        assert len(recs) == 3
    assert knn.recommend(RecommendationRequest(user_id="u", k=2, context=None))


def test_similar_items_come_from_the_same_sessions():
    knn = SessionKNNRecommender().fit(frame(clustered_sessions()))
    similar = [s.item_id for s in knn.similar_items("b2", k=3)]
    assert similar and "b2" not in similar
    assert all(i.startswith("b") for i in similar)
    assert knn.similar_items("unknown", k=3) == []


def test_items_in_the_catalogue_but_in_no_session_fall_back_to_popular_items():
    knn = SessionKNNRecommender().fit_sessions(
        np.array([0, 0, 1, 1]), np.array([1, 2, 1, 3]), item_names=["unused", "a", "b", "c"]
    )
    assert len(knn.recommend(request(("unused",), k=3))) == 3
    assert knn.top_codes([0], 3).tolist()[0] == 1  # the most popular item first


def test_tool_requests_get_nothing_rather_than_products():
    knn = SessionKNNRecommender(k=10).fit(frame(clustered_sessions()))
    context = SessionContext(user_id="u", session_id="now", recent_items=("a1",))
    assert knn.recommend(RecommendationRequest(user_id="u", k=3, kind="tool", context=context)) == []
    assert knn.recommend(RecommendationRequest(user_id="u", k=3, kind="product", context=context))
