"""The hybrid: candidate union, features, labels from what the session did next, the listwise ranker."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from model.hybrid.candidates import gather
from model.hybrid.example_log import ExampleLog, LoggedTrigger, labelled
from model.hybrid.features import candidate_features, feature_names
from model.hybrid.item_stats import ItemStats
from model.hybrid.ranker import RankerConfig, train_ranker
from model.hybrid.recommender import HybridRecommender
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PageView
from streamrec.session_store import SessionContext


class Fixed(Recommender):
    """A source that always ranks the same items (minus the request's exclusions)."""

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.observed = 0

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        kept = [i for i in self.items if i not in request.exclude]
        return [ScoredItem(i, 10.0 - r) for r, i in enumerate(kept)][: request.k]

    def observe(self, events, contexts) -> None:
        self.observed += len(events)


def _request(recent=("b",), exclude=frozenset(), trigger="b", now_ms=7_200_000) -> RecommendationRequest:
    context = SessionContext(user_id="u", session_id="s", recent_items=tuple(recent), page_views=len(recent),
                             categories={"shoes": 2, "hats": 2}, price_mean=10.0)
    return RecommendationRequest("u", 3, context=context, exclude=exclude, now_ms=now_ms, trigger_item=trigger)


def _stats() -> ItemStats:
    stats = ItemStats()
    for n, (item, category, price) in enumerate([("a", "shoes", 20.0), ("b", "hats", 10.0), ("c", "shoes", 5.0)]):
        stats.observe([PageView(user_id="x", session_id=f"x{n}", item_id=item, category=category, price=price,
                                ts=datetime.fromtimestamp(n * 3600, UTC))])
    return stats


def test_the_union_keeps_each_sources_rank_and_drops_excluded_items():
    sources = {"one": Fixed(["a", "b", "c"]), "two": Fixed(["c", "d"])}
    (found,) = gather([_request(exclude=frozenset({"b"}))], sources, depth=5, max_candidates=10)
    assert found.items == ["a", "c", "d"]
    # ranks are positions in each source's own list, which the source filtered already
    assert {name: hit.rank for name, hit in found.hits[1].items()} == {"one": 1, "two": 0}


def test_the_union_is_cut_by_reciprocal_rank_fusion():
    sources = {"one": Fixed(["a", "b", "c"]), "two": Fixed(["c", "d", "e"])}
    (found,) = gather([_request()], sources, depth=5, max_candidates=2)
    assert found.items == ["c", "a"]  # c is in both lists


def test_features_describe_the_candidate_in_its_session():
    stats = _stats()
    sources = {"one": Fixed(["a", "b", "c"]), "two": Fixed(["c"])}
    (found,) = gather([_request(recent=("b", "a"))], sources, depth=5, max_candidates=10)
    matrix = candidate_features(found, list(sources), stats)
    names = feature_names(list(sources))
    row = {item: dict(zip(names, matrix[j], strict=True)) for j, item in enumerate(found.items)}
    assert row["a"]["one:present"] == 1 and row["a"]["two:present"] == 0
    assert row["c"]["two:reciprocal_rank"] == 1.0 and row["c"]["one:reciprocal_rank"] == pytest.approx(1 / 3)
    assert row["a"]["in_session"] == 1 and row["a"]["session_recency"] == pytest.approx(0.5)
    assert row["c"]["in_session"] == 0
    assert row["b"]["is_trigger_item"] == 1 and row["a"]["is_trigger_item"] == 0
    assert row["a"]["same_category_as_trigger"] == 0 and row["b"]["same_category_as_trigger"] == 1
    assert row["a"]["category_share"] == pytest.approx(0.5)
    assert row["a"]["log_price_over_session_mean"] == pytest.approx(np.log(2.0), abs=1e-6)
    assert row["a"]["log_age_hours"] == pytest.approx(np.log1p(2.0), abs=1e-6)  # seen at 0 h, trigger at 2 h
    assert row["c"]["sources_present"] == 2


def test_labels_are_the_sessions_next_other_item_and_triggers_without_one_are_dropped():
    frame = pd.DataFrame({
        "session_id": ["s"] * 4 + ["t"],
        "ts": pd.to_datetime([1000, 2000, 3000, 4000, 1000], unit="ms", utc=True),
        "event_type": ["page_view"] * 5, "item_id": ["a", "b", "b", "c", "z"],
    })
    features = np.ones((3, 2), np.float32)
    logged = [
        LoggedTrigger("s", 2000, "b", ["c", "a", "b"], features),  # next is b (= trigger, skipped), then c
        LoggedTrigger("s", 1000, "a", ["x", "y", "z"], features),  # next is b: not a candidate
        LoggedTrigger("t", 1000, "z", ["a", "b", "c"], features),  # nothing after
    ]
    examples = labelled(logged, frame)
    assert (examples.logged, examples.with_next_item, examples.next_in_candidates) == (3, 2, 1)
    assert examples.labels.tolist() == [0]


def test_the_example_log_records_exactly_what_serving_computes():
    stats = _stats()
    hybrid = HybridRecommender({"one": Fixed(["a", "b", "c"]), "two": Fixed(["c"])}, stats)
    logger = ExampleLog(hybrid)
    request = _request(recent=("b", "a"))
    answer = logger.recommend_batch([request])[0]
    served = hybrid.candidates([request])[0]
    assert logger.logged[0].items == served.candidates.items
    assert np.array_equal(logger.logged[0].features, served.features)
    assert [s.item_id for s in answer] == [s.item_id for s in hybrid.recommend(request)]


def test_the_hybrid_observes_through_every_source_once():
    one, two = Fixed(["a"]), Fixed(["b"])
    hybrid = HybridRecommender({"one": one, "two": two}, ItemStats(), fallback=two)
    hybrid.observe([PageView(user_id="u", session_id="s", item_id="a")], [])
    assert (one.observed, two.observed) == (1, 1)
    assert hybrid.stats.total == {"a": 1.0}


def _synthetic(n: int, candidates: int, width: int, seed: int = 0):
    """Triggers whose positive has a higher feature 0 (plus noise): a ranker must learn to put it first."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, candidates, width)).astype(np.float32)
    labels = rng.integers(0, candidates, size=n).astype(np.int32)
    features[np.arange(n), labels, 0] += 2.5
    mask = np.ones((n, candidates), bool)
    mask[:, -3:] = rng.random((n, 3)) < 0.5  # some padding
    mask[np.arange(n), labels] = True
    return features, mask, labels


def test_the_ranker_learns_which_feature_marks_the_next_item_and_numpy_serving_matches_keras():
    features, mask, labels = _synthetic(1500, 12, 4)
    ranker, report = train_ranker(features, mask, labels, ["f0", "f1", "f2", "f3"],
                                  RankerConfig(max_epochs=8, patience=2), progress=False)
    scores = np.where(mask, ranker.scores(features), -np.inf)
    assert (scores.argmax(axis=1) == labels).mean() > 0.5  # chance is 1/12
    assert report.validation_triggers == 300 and 1 <= report.best_epoch <= report.epochs_run
    x = ((features - ranker.mean) / ranker.std).astype(np.float32)
    keras_scores = np.asarray(ranker.keras_model(x[:50], training=False))
    assert np.allclose(keras_scores, ranker.scores(features[:50]), atol=1e-4)


def test_the_ranker_keeps_the_best_validation_epoch(tmp_path):
    features, mask, labels = _synthetic(600, 8, 3, seed=1)
    ranker, report = train_ranker(features, mask, labels, ["a", "b", "c"], RankerConfig(max_epochs=6, patience=6),
                                  progress=False)
    losses = [h["validation_loss"] for h in report.history]
    assert report.best_epoch == int(np.argmin(losses)) + 1
    ranker.save(tmp_path)
    from model.hybrid.ranker import ListwiseRanker

    assert np.allclose(ListwiseRanker.load(tmp_path).scores(features[:5]), ranker.scores(features[:5]))


def test_a_frame_goes_back_to_the_events_it_came_from():
    from model.interactions import events_to_frame, frame_to_events
    from streamrec.events import AddToCart, Purchase, SessionStart, TaskCompleted

    at = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        SessionStart(event_id="e0", user_id="u", session_id="s", ts=at),
        PageView(event_id="e1", user_id="u", session_id="s", item_id="a", category="c", price=3.5, ts=at),
        PageView(event_id="e2", user_id="u", session_id="s", page="/home", ts=at),
        AddToCart(event_id="e3", user_id="u", session_id="s", item_id="a", brand="b", ts=at),
        Purchase(event_id="e4", user_id="u", session_id="s", item_id="a", price=3.5, ts=at),
        TaskCompleted(event_id="e5", user_id="u", session_id="s", tool_id="t", ts=at),
    ]
    back = frame_to_events(events_to_frame(events))
    assert [(e.event_id, e.type) for e in back] == [(e.event_id, e.type) for e in events]
    assert back[1].price == 3.5 and back[1].category == "c" and back[2].item_id is None
    assert back[3].brand == "b" and back[5].tool_id == "t"


def test_a_batch_of_triggers_is_featured_as_each_alone_and_unknowns_read_as_zero():
    from model.hybrid.features import batch_features

    stats = _stats()
    sources = {"one": Fixed(["a", "new", "b", "c"]), "two": Fixed(["c", "a"])}
    bare = RecommendationRequest("v", 3, now_ms=3_600_000 * 5, trigger_item="new")  # no session context
    requests = [_request(recent=("b", "a")), bare, _request(recent=("c",), trigger="c", now_ms=0)]
    sets = gather(requests, sources, depth=5, max_candidates=10)
    together = batch_features(sets, list(sources), stats)
    for matrix, one in zip(together, sets, strict=True):
        assert np.array_equal(matrix, candidate_features(one, list(sources), stats))
    names = feature_names(list(sources))
    row = {item: dict(zip(names, together[1][j], strict=True)) for j, item in enumerate(sets[1].items)}
    assert row["new"]["log_popularity"] == 0 and row["new"]["log_age_hours"] == 0
    assert row["new"]["price_known"] == 0 and row["new"]["log_price_over_session_mean"] == 0
    assert row["new"]["is_trigger_item"] == 1 and row["a"]["log_page_views"] == 0
    # "a" was seen once at 0 h: five hours later its recent count has halved five times
    assert row["a"]["log_recent_popularity"] == pytest.approx(np.log1p(0.5**5), abs=1e-6)
    assert row["a"]["log_age_hours"] == pytest.approx(np.log1p(5.0), abs=1e-6)
    early = {item: dict(zip(names, together[2][j], strict=True)) for j, item in enumerate(sets[2].items)}
    assert early["c"]["log_age_hours"] == 0  # the trigger precedes the item's first sighting: no negative age
    assert early["a"]["log_recent_popularity"] == pytest.approx(np.log1p(1.0), abs=1e-6)  # never projected back
    assert batch_features([], list(sources), stats) == []


def test_the_ranker_scores_a_whole_batch_in_one_call_and_orders_as_one_request_at_a_time():
    from model.hybrid.recommender import ranked

    class CountingRanker:
        calls = 0

        def scores(self, features):
            CountingRanker.calls += 1
            return features[:, 0] * 3 - features[:, -1] + features[:, 4]

    hybrid = HybridRecommender({"one": Fixed(["a", "b", "c", "d"]), "two": Fixed(["d", "c"])}, _stats(),
                               CountingRanker())
    requests = [_request(recent=("b", "a")), _request(recent=("c",), trigger="c"), _request(exclude=frozenset("a"))]
    batch = hybrid.recommend_batch(requests)
    assert CountingRanker.calls == 1
    assert batch == [hybrid.recommend(r) for r in requests]
    # the partial sort gives the full sort's top k, ties broken by item id
    items = [f"i{j:03d}" for j in range(200)]
    scores = np.array([float(j % 7) for j in range(200)])
    full = sorted(range(200), key=lambda j: (-scores[j], items[j]))[:5]
    assert [s.item_id for s in ranked(items, scores, 5)] == [items[j] for j in full]


def test_tools_go_to_the_tool_model_topped_up_and_everything_else_to_the_rest():
    from model.recommender import ToolsFrom

    class Named(Fixed):
        def __init__(self, name, items):
            super().__init__(items)
            self.name = name

    tools, rest = Named("tool-transitions", ["t1"]), Named("session-cooccurrence", ["t1", "t2", "p1"])
    served = ToolsFrom(tools, rest)
    tool = RecommendationRequest("u", 2, kind="tool", trigger_item="t0")
    product = RecommendationRequest("u", 2)
    assert [[s.item_id for s in a] for a in served.recommend_batch([tool, product])] == [["t1", "t2"], ["t1", "t2"]]
    assert served.name == "session-cooccurrence"  # it stands in for the rest, as served
    served.observe([PageView(user_id="x", session_id="s", item_id="p1")], [None])
    assert tools.observed == rest.observed == 1
    hybrid = HybridRecommender({"rest": rest}, _stats(), fallback=served)
    hybrid.observe([PageView(user_id="x", session_id="s", item_id="p1")], [None])
    assert tools.observed == rest.observed == 2  # a source inside the fallback is observed once, not twice
