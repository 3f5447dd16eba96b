"""Offline baselines behind the Recommender interface: popularity and item-item cosine over co-usage."""

from __future__ import annotations

import pandas as pd

from model.baselines.item_cosine import ItemCosineRecommender
from model.baselines.popularity import PopularityRecommender
from model.recommender import RecommendationRequest
from streamrec.session_store import SessionContext


def _frame(pairs: list[tuple[str, str, str]]) -> pd.DataFrame:
    """(user, item, event type) rows, one second apart."""
    return pd.DataFrame({
        "user_id": [u for u, _, _ in pairs], "item_id": [i for _, i, _ in pairs],
        "event_type": [t for _, _, t in pairs], "kind": "product", "session_id": [f"s-{u}" for u, _, _ in pairs],
        "ts": pd.date_range("2026-01-01", periods=len(pairs), freq="s", tz="UTC"),
        "category": None, "brand": None, "price": None,
    })


def test_popularity_ranks_by_weighted_events_and_respects_exclusions():
    frame = _frame([("u1", "a", "page_view"), ("u2", "a", "page_view"), ("u3", "b", "purchase"),
                    ("u1", "c", "page_view")])
    model = PopularityRecommender().fit(frame)
    ranked = [s.item_id for s in model.recommend(RecommendationRequest("anyone", 3))]
    assert ranked == ["b", "a", "c"]  # one purchase outweighs two views
    assert [s.item_id for s in model.recommend(RecommendationRequest("u", 2, exclude=frozenset({"b"})))] == ["a", "c"]


def test_item_cosine_recommends_what_similar_users_bought():
    # x and y are bought together by many users; z is popular but never with x.
    rows = [(f"u{i}", "x", "purchase") for i in range(5)] + [(f"u{i}", "y", "purchase") for i in range(5)]
    rows += [(f"v{i}", "z", "purchase") for i in range(9)] + [("w", "x", "purchase")]
    model = ItemCosineRecommender().fit(_frame(rows))
    assert model.similar_items("x", 1)[0].item_id == "y"
    # A user whose history is x (from training, no context given) gets y first, then popularity fills up.
    ranked = [s.item_id for s in model.recommend(RecommendationRequest("w", 2, exclude=frozenset({"x"})))]
    assert ranked == ["y", "z"]
    # The live session context wins over training history.
    context = SessionContext(user_id="new", session_id="s", recent_items=("y",))
    assert model.recommend(RecommendationRequest("new", 1, context=context))[0].item_id == "x"


def _summed_by_dictionary(model: ItemCosineRecommender, request: RecommendationRequest) -> list[tuple[str, float]]:
    """What item-cosine ranked before its lists were arrays: a dictionary summed seed by seed, sorted by score
    then id (the reference the vectorised sum must match, ties included)."""
    seeds = model._seeds(request)
    blocked = set(request.exclude) | set(seeds)
    scores: dict[str, float] = {}
    for seed in seeds:
        for item, sim in model.similar.get((request.kind, seed), []):
            if item not in blocked:
                scores[item] = scores.get(item, 0.0) + sim
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[: request.k]


def test_item_cosine_sums_and_breaks_ties_exactly_as_a_dictionary_loop():
    import random

    rng = random.Random(3)
    catalogue = [f"i{n:03d}" for n in range(60)]
    model = ItemCosineRecommender()
    # Similarities from a few values, so many items tie and the order falls to the id; lists of varied length.
    model.similar = {("product", seed): [(item, rng.choice([0.1, 0.25, 0.5, 1 / 3])) for item in
                                         rng.sample([c for c in catalogue if c != seed], rng.randint(0, 25))]
                     for seed in catalogue}
    model.histories = {}
    model._build_spaces()
    checked = 0
    for trial in range(200):
        seeds = tuple(rng.sample(catalogue, rng.randint(1, 6)))
        context = SessionContext(user_id="u", session_id="s", recent_items=seeds)
        request = RecommendationRequest("u", k=rng.randint(1, 30), context=context, trigger_item=seeds[0],
                                        exclude=frozenset(rng.sample(catalogue, rng.randint(0, 8))))
        expected = _summed_by_dictionary(model, request)
        got = model.recommend(request)[: len(expected)]
        assert [(s.item_id, s.score) for s in got] == expected, trial
        checked += len(expected)
    assert checked > 1000  # the trials listed items, not only popularity fill
