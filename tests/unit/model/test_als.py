"""ALS (implicit) behind the Recommender interface: two blocks of co-bought items, returning and unseen users."""

from __future__ import annotations

import pandas as pd
import pytest

from model.baselines.als import AlsRecommender
from model.recommender import RecommendationRequest
from streamrec.session_store import SessionContext

BLOCK_A = [f"a{i}" for i in range(6)]
BLOCK_B = [f"b{i}" for i in range(6)]


def _frame() -> pd.DataFrame:
    """40 users each buy 4 items of one block; the B block is more popular overall."""
    rows = []
    for u in range(40):
        block = BLOCK_A if u < 15 else BLOCK_B
        rows += [(f"u{u}", block[(u + j) % 6]) for j in range(4)]
    return pd.DataFrame({
        "user_id": [u for u, _ in rows], "item_id": [i for _, i in rows], "event_type": "purchase",
        "kind": "product", "session_id": [f"s-{u}" for u, _ in rows],
        "ts": pd.date_range("2026-01-01", periods=len(rows), freq="s", tz="UTC"),
        "category": None, "brand": None, "price": None,
    })


def _model() -> AlsRecommender:
    # Two blocks, two factors: with more factors than the data has structure ALS fits each user row exactly.
    return AlsRecommender(factors=2, iterations=20, regularization=0.05, threads=1).fit(_frame())


def test_a_returning_user_gets_the_items_of_their_block_not_the_popular_one():
    model = _model()
    bought = {"a0", "a1", "a2", "a3"}  # u0's purchases
    ranked = [s.item_id for s in model.recommend(RecommendationRequest("u0", 2, exclude=frozenset(bought)))]
    assert set(ranked) == {"a4", "a5"}


def test_an_unseen_user_with_session_items_gets_collaborative_candidates():
    model = _model()
    context = SessionContext(user_id="new", session_id="s", recent_items=("a4",))
    ranked = [s.item_id for s in model.recommend(RecommendationRequest("new", 3, context=context))]
    assert "a4" not in ranked  # the session's own items are never sent back
    assert set(ranked) <= set(BLOCK_A)


def test_a_user_it_knows_nothing_about_gets_popularity_and_scores_stay_ordered():
    model = _model()
    ranked = model.recommend(RecommendationRequest("stranger", 4))
    popular = [s.item_id for s in model.popularity.recommend(RecommendationRequest("stranger", 4))]
    assert [s.item_id for s in ranked] == popular
    scores = [s.score for s in ranked]
    assert scores == sorted(scores, reverse=True)
    filled = model.recommend(RecommendationRequest("u0", 12))
    assert len(filled) == 12 and len({s.item_id for s in filled}) == 12
    assert [s.score for s in filled] == sorted((s.score for s in filled), reverse=True)


def test_similar_items_stay_in_the_block():
    model = _model()
    assert {s.item_id for s in model.similar_items("b0", 3)} <= set(BLOCK_B) - {"b0"}


def test_a_batch_is_answered_as_each_request_alone():
    model = _model()
    context = SessionContext(user_id="new", session_id="s", recent_items=("a1", "a2"))
    requests = [
        RecommendationRequest("u3", 4),  # known user, no session: learned factors
        RecommendationRequest("new", 4, context=context, trigger_item="a1"),  # solved from the session
        RecommendationRequest("u20", 4, trigger_item="b0", exclude=frozenset({"b1"})),  # known user + session
        RecommendationRequest("nobody", 4),  # nothing known: popularity
        RecommendationRequest("new", 3, kind="tool", trigger_item="t1"),  # a kind ALS was not fitted on
    ]
    batch = model.recommend_batch(requests)
    for request, answer in zip(requests, batch, strict=True):
        alone = model.recommend(request)
        assert [s.item_id for s in answer] == [s.item_id for s in alone]
        assert [s.score for s in answer] == pytest.approx([s.score for s in alone], rel=1e-5)
    assert all(s.item_id.startswith("a") for s in batch[1][:2]) and "b1" not in {s.item_id for s in batch[2]}
