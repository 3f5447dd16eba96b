"""Every servable model saves and loads back scoring the same; the worker's source serves the newest of any kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.baselines.als import AlsRecommender
from model.baselines.item_cosine import ItemCosineRecommender
from model.baselines.popularity import PopularityRecommender
from model.baselines.session_knn import SessionKNNRecommender
from model.bundle_paths import newest_bundle, read_manifest
from model.recommender import RecommendationRequest, Recommender, ScoredItem, WithFallback
from model.saved_models import load_recommender, publish_model
from model.serving import BundleRecommenderSource
from streamrec.events import TOOL
from streamrec.session_store import SessionContext

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sessions_frame(n_sessions: int = 120, n_items: int = 15, seed: int = 4) -> pd.DataFrame:
    """Short sessions that mostly walk item i -> i + 1 (one user per session, some purchases)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        item = int(rng.integers(n_items))
        for p in range(int(rng.integers(2, 6))):
            rows.append({"user_id": f"u{s % 40}", "session_id": f"s{s}", "item_id": f"i{item}", "kind": "product",
                         "event_type": "purchase" if rng.random() < 0.2 else "page_view",
                         "ts": T0 + timedelta(minutes=s, seconds=p)})
            item = (item + 1) % n_items if rng.random() < 0.8 else int(rng.integers(n_items))
    return pd.DataFrame(rows)


def requests() -> list[RecommendationRequest]:
    def session(*newest_first: str) -> SessionContext:
        return SessionContext(user_id="u1", session_id="live", recent_items=newest_first)

    return [
        RecommendationRequest("u1", 5, context=session("i3", "i2")),
        RecommendationRequest("u7", 4, context=session("i9"), exclude=frozenset({"i10"})),
        RecommendationRequest("u2", 3),  # no session: history or popularity
    ]


def session_gru() -> Recommender:
    from model.session_gru.recommender import SessionModelRecommender

    return SessionModelRecommender(embedding_dim=8, hidden_units=8, batch_size=64, epochs=1, seed=3)


FACTORIES = {
    "popularity": PopularityRecommender,
    "item-cosine": ItemCosineRecommender,
    "session-knn": SessionKNNRecommender,
    "session-gru": session_gru,
    "als": lambda: AlsRecommender(factors=8, iterations=5, threads=1),
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, Recommender]:
    frame = sessions_frame()
    return {kind: factory().fit(frame) for kind, factory in FACTORIES.items()}


def assert_same_recommendations(a: list[list[ScoredItem]], b: list[list[ScoredItem]]) -> None:
    assert [[s.item_id for s in row] for row in a] == [[s.item_id for s in row] for row in b]
    for row_a, row_b in zip(a, b, strict=True):
        assert np.allclose([s.score for s in row_a], [s.score for s in row_b], atol=1e-6)


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_a_saved_model_loads_back_with_the_same_scores(fitted, kind: str, tmp_path: Path):
    model = fitted[kind]
    path = publish_model(model, tmp_path)
    assert newest_bundle(tmp_path) == path
    assert read_manifest(path).kind == kind and read_manifest(path).version == path.name
    loaded = load_recommender(path)
    assert type(loaded) is type(model) and loaded.version == path.name
    before = model.recommend_batch(requests())
    assert all(before)
    assert_same_recommendations(loaded.recommend_batch(requests()), before)
    assert loaded.similar_items("i3", 3) == model.similar_items("i3", 3)


def test_streaming_models_say_they_cannot_be_saved(tmp_path: Path):
    class Streaming(Recommender):
        def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
            return []

    with pytest.raises(NotImplementedError, match="cannot be saved"):
        publish_model(Streaming(), tmp_path)
    assert newest_bundle(tmp_path) is None  # nothing half-written is visible


class _Tools(Recommender):
    """The streaming baseline's stand-in: answers tools, counts what it observed."""

    name = "baseline"

    def __init__(self) -> None:
        self.observed = 0

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return [ScoredItem("tool-1", 1.0)] if request.kind == TOOL else [ScoredItem("fallback-item", 0.5)]

    def observe(self, events, contexts) -> None:
        self.observed += len(events)


def test_the_serving_source_picks_up_a_newly_saved_session_gru(fitted, tmp_path: Path):
    now = [0.0]
    baseline = _Tools()
    source = BundleRecommenderSource(tmp_path, baseline, reload_interval_s=10, clock=lambda: now[0])
    assert source.current() is baseline
    path = publish_model(fitted["session-gru"], tmp_path)
    now[0] = 10
    served = source.current()
    assert source.loaded_path == path and source.reloads == 1
    assert (served.name, served.version) == ("session-gru", path.name)  # what its notifications will say
    assert_same_recommendations(served.recommend_batch(requests()), fitted["session-gru"].recommend_batch(requests()))
    # Tools stay with the streaming baseline, which keeps observing the stream.
    assert served.recommend(RecommendationRequest("u1", 1, kind=TOOL)) == [ScoredItem("tool-1", 1.0)]
    served.observe([object(), object()], [])  # type: ignore[list-item]
    assert baseline.observed == 2


def test_with_fallback_fills_empty_answers_from_the_fallback():
    class Silent(Recommender):
        name, version = "silent", "3"

        def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
            return []

    model = WithFallback(Silent(), _Tools())
    assert (model.name, model.version) == ("silent", "3")
    assert model.recommend(RecommendationRequest("u", 1)) == [ScoredItem("fallback-item", 0.5)]


def test_the_served_model_is_the_newest_saved_kind_else_the_streaming_model(fitted, tmp_path: Path):
    from model.serving import served_model_name
    from streamrec.settings import Settings

    settings = Settings(model_dir=tmp_path, streaming_model="session-cooccurrence")
    assert served_model_name(settings) == "session-cooccurrence"
    publish_model(fitted["session-gru"], tmp_path)
    assert served_model_name(settings) == "session-gru"


def test_with_fallback_tops_up_short_answers_without_repeating_items():
    class Short(Recommender):
        def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
            return [ScoredItem("a", 2.0)]

    class Many(Recommender):
        def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
            return [ScoredItem(i, 1.0) for i in ("a", "b", "c", "d")]

    answer = WithFallback(Short(), Many()).recommend(RecommendationRequest("u", 3))
    assert [s.item_id for s in answer] == ["a", "b", "c"]
