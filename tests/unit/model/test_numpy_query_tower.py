"""The served query tower in NumPy gives the Keras/TensorFlow tower's vectors, and so the same recommendations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.bundle import BundleConfig, ModelBundle
from model.index.faiss_index import ItemIndex, with_prior
from model.interactions import events_to_frame
from model.ranking.features import RankerConfig
from model.ranking.wide_deep import build_ranker
from model.recommender import RecommendationRequest
from model.scoring import QueryEncoder
from model.training import user_histories
from model.two_tower.examples import query_inputs
from model.two_tower.features import build_feature_spec
from model.two_tower.numpy_query import NumpyQueryTower
from model.two_tower.recommender import TwoTowerRecommender
from model.two_tower.towers import TwoTowerConfig, build_towers
from model.two_tower.training import item_vectors
from producers.simulator import simulate
from streamrec.session_store import SessionContext

NOW_MS = 1_767_600_000_000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    _, events = simulate(3_000, seed=11)
    return events_to_frame(events)


def _randomise(model, seed: int) -> None:
    """Weights far from their initialisation (nonzero biases, both GRU bias rows distinct), so a wrong gate order,
    bias row or layer order shows in the vectors."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.normal(0.0, 0.4, w.shape).astype(np.float32) for w in layer.get_weights()])


def _bundle(frame: pd.DataFrame, history_encoder: str) -> ModelBundle:
    """A small untrained bundle with randomised weights: the comparison needs exact arithmetic, not a good model."""
    config = TwoTowerConfig(embedding_dim=8, hidden_units=16, history_length=6, history_encoder=history_encoder,
                            encoder_units=12)
    spec = build_feature_spec(frame, config.history_length)
    towers = build_towers(spec, config)
    _randomise(towers.query, seed=1 if history_encoder == "gru" else 2)
    _randomise(towers.item, seed=3)  # the query tower's item embedding is shared: randomise the rest as well
    ranker_config = RankerConfig(epochs=1, hidden_units=(16,))
    vectors = item_vectors(towers, spec)
    prior = 0.5 * np.asarray(spec.item_log_q, dtype=np.float32)
    return ModelBundle(
        config=BundleConfig(created_at=pd.Timestamp.now(tz="UTC").to_pydatetime(), two_tower=config,
                            ranker=ranker_config, spec=spec, popularity_prior=0.5, serve_ranker=True, ranker_blend=1.0),
        towers=towers, item_vectors=vectors, index=ItemIndex.build(with_prior(vectors, prior)),
        ranker=build_ranker(spec, ranker_config), user_history=user_histories(frame, config.history_length),
    )


@pytest.fixture(scope="module", params=["mean", "gru"])
def bundle(request, frame) -> ModelBundle:
    return _bundle(frame, request.param)


def _contexts(bundle: ModelBundle, n: int, seed: int) -> tuple[list[str], list[SessionContext | None], np.ndarray]:
    """Known and unknown users; histories empty, short, full and longer than the tower reads, with unknown items."""
    rng = np.random.default_rng(seed)
    spec = bundle.spec
    items, users, categories = spec.items.tokens[1:], spec.users.tokens[1:], spec.categories.tokens[1:]
    user_ids, contexts = [], []
    for row in range(n):
        user = str(rng.choice(users)) if row % 3 else f"unknown-user-{row}"
        length = [0, 1, spec.history_length, spec.history_length + 3, int(rng.integers(2, spec.history_length))][
            row % 5]
        recent = [str(i) for i in rng.choice(items, length)]
        if length > 2:
            recent[1] = f"item-added-later-{row}"  # unknown to the vocabulary: dropped, the rest close up
        started = NOW_MS - int(rng.integers(0, 3_600_000))
        contexts.append(None if row == 4 else SessionContext(
            user_id=user, session_id=f"s{row}", started_ms=started, last_ms=NOW_MS, page_views=int(rng.integers(0, 9)),
            recent_items=tuple(recent) if row % 2 else (), user_recent_items=tuple(recent),
            categories={str(c): int(rng.integers(1, 4)) for c in rng.choice(categories, 2)}))
        user_ids.append(user)
    now = NOW_MS - rng.integers(0, 30 * 86_400_000, n)
    return user_ids, contexts, now


@pytest.mark.parametrize("batch", [1, 3, 17])
def test_numpy_tower_gives_the_keras_vectors(bundle, batch):
    inputs = query_inputs(bundle.spec, *_contexts(bundle, batch, seed=batch))
    served = NumpyQueryTower(bundle.towers.query, bundle.config.two_tower)(inputs)
    reference = QueryEncoder(bundle.towers.query, bundle.spec)(inputs)
    assert served.dtype == np.float32 and served.shape == reference.shape == (batch, 8)
    np.testing.assert_allclose(served, reference, atol=1e-5, rtol=0)
    # The plain Keras call agrees as well (QueryEncoder is itself a traced copy of it).
    np.testing.assert_allclose(served, np.asarray(bundle.towers.query(inputs, training=False)), atol=1e-5, rtol=0)


def test_the_comparison_notices_a_wrong_gate_order(frame):
    """The equality above is not trivially met: swapping the GRU's z and r gates moves the vectors well past it."""
    bundle = _bundle(frame, "gru")
    inputs = query_inputs(bundle.spec, *_contexts(bundle, 17, seed=5))
    tower = NumpyQueryTower(bundle.towers.query, bundle.config.two_tower)
    reference = QueryEncoder(bundle.towers.query, bundle.spec)(inputs)
    gru, units = tower.read_history, bundle.config.two_tower.encoder_units
    swap = np.r_[units:2 * units, :units, 2 * units:3 * units]
    for name in ("kernel", "input_bias", "recurrent_kernel", "recurrent_bias"):
        setattr(gru, name, getattr(gru, name)[..., swap])
    assert np.abs(tower(inputs) - reference).max() > 1e-3


def test_served_lists_are_the_same_with_the_numpy_and_the_tensorflow_tower(bundle):
    served = TwoTowerRecommender(bundle)
    reference = TwoTowerRecommender(bundle, numpy_query=False)
    assert isinstance(served.encode, NumpyQueryTower) and isinstance(reference.encode, QueryEncoder)
    # Items added while serving join both indexes; requests mention them and unknown users.
    category = bundle.spec.categories.tokens[1]
    for model in (served, reference):
        assert model.add_items(["item-added-later-1", "item-added-later-2"], [category, category], [None, "b"],
                               [12.0, None]) == 2
    users, contexts, now = _contexts(bundle, 9, seed=7)
    requests = [RecommendationRequest(u, 10, context=c, now_ms=int(t), exclude=frozenset(bundle.spec.items.tokens[1:3]))
                for u, c, t in zip(users, contexts, now, strict=True)]
    requests += [RecommendationRequest(u, 5, now_ms=NOW_MS) for u in list(bundle.user_history)[:4]]
    ours, theirs = served.recommend_batch(requests), reference.recommend_batch(requests)
    assert sum(len(answer) for answer in ours) > 0
    for mine, other in zip(ours, theirs, strict=True):
        assert [s.item_id for s in mine] == [s.item_id for s in other]
        np.testing.assert_allclose([s.score for s in mine], [s.score for s in other], atol=1e-4, rtol=0)
