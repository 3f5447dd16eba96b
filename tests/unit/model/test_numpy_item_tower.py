"""The item tower in NumPy gives the Keras tower's vectors, so items added while serving rank as they did before."""

from __future__ import annotations

import numpy as np
import pytest

from model.bundle import ModelBundle
from model.interactions import events_to_frame
from model.recommender import RecommendationRequest
from model.two_tower.numpy_item import NumpyItemTower
from model.two_tower.recommender import TwoTowerRecommender
from producers.simulator import simulate
from tests.unit.model.test_numpy_query_tower import NOW_MS, _bundle, _contexts


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    """The query tests' small bundle: every layer randomised (nonzero biases), so a wrong table or order shows."""
    _, events = simulate(3_000, seed=11)
    return _bundle(events_to_frame(events), "gru")


def _item_inputs(bundle: ModelBundle, n: int, seed: int) -> dict[str, np.ndarray]:
    """Known and unknown (0) ids, categories and brands, every price band including 'no price' (0)."""
    rng = np.random.default_rng(seed)
    spec = bundle.spec
    inputs = {"item": rng.integers(0, len(spec.items), n), "category": rng.integers(0, len(spec.categories), n),
              "brand": rng.integers(0, len(spec.brands), n), "price_band": rng.integers(0, spec.n_price_bands + 1, n)}
    for key, column in inputs.items():
        column[:: 3 if key == "item" else 4] = 0  # row 0 is unknown in every column
    return {key: column.astype(np.int32) for key, column in inputs.items()}


@pytest.mark.parametrize("batch", [1, 13])
def test_numpy_item_tower_gives_the_keras_vectors(bundle, batch):
    inputs = _item_inputs(bundle, batch, seed=batch)
    served = NumpyItemTower(bundle.towers.item)(inputs)
    reference = np.asarray(bundle.towers.item(inputs, training=False))
    assert served.dtype == np.float32 and served.shape == reference.shape == (batch, 8)
    np.testing.assert_allclose(served, reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)


def test_the_comparison_notices_swapped_attribute_tables(bundle):
    """The equality above is not trivially met: joining the brand embedding before the category's moves the vectors."""
    inputs = _item_inputs(bundle, 13, seed=5)
    tower = NumpyItemTower(bundle.towers.item)
    reference = np.asarray(bundle.towers.item(inputs, training=False))
    item, category, brand, band = tower.embeddings
    tower.embeddings = [item, brand, category, band]  # both are embedding_dim wide: only the order is wrong
    assert np.abs(tower(inputs) - reference).max() > 1e-3


def test_items_added_while_serving_rank_the_same_with_the_numpy_and_the_keras_tower(bundle):
    served = TwoTowerRecommender(bundle)
    reference = TwoTowerRecommender(bundle, numpy_item=False)
    assert isinstance(served.embed_items, NumpyItemTower) and not isinstance(reference.embed_items, NumpyItemTower)
    spec = bundle.spec
    # No two added items share all three attributes: their vectors would tie, and a tie's order is float noise.
    categories = [*spec.categories.tokens[1:4], "category-never-seen"] * 4
    brands = [*spec.brands.tokens[1:3], "brand-never-seen"] * 5 + [None]
    prices = [None, 3.0, 45.0, 900.0, 60.0] * 3 + [None]
    added = [f"item-added-later-{j}" for j in range(len(categories))]
    for model in (served, reference):
        # One at a time, as `observe` adds a product at its first event, then the rest in one call.
        assert model.add_items(added[:1], categories[:1], brands[:1], prices[:1]) == 1
        assert model.add_items(added, categories, brands, prices) == len(added) - 1
    for item in added:
        np.testing.assert_allclose(served.item_vector(item), reference.item_vector(item), atol=1e-5, rtol=0)
    neighbours = {}
    for item in [*added, *spec.items.tokens[1:6]]:
        ours, theirs = served.similar_items(item, 10), reference.similar_items(item, 10)
        assert [s.item_id for s in ours] == [s.item_id for s in theirs]
        np.testing.assert_allclose([s.score for s in ours], [s.score for s in theirs], atol=1e-4, rtol=0)
        neighbours[item] = [s.item_id for s in ours]
    # The comparison covers the added items' own rows: they are among each other's neighbours.
    assert any(set(found) & set(added) for found in neighbours.values())

    # Whole-catalogue lists: added items rank low (lowest popularity prior, unknown to the ranker), yet they are in.
    k = len(served.index)
    users, contexts, now = _contexts(bundle, 9, seed=7)
    requests = [RecommendationRequest(u, k, context=c, now_ms=int(t)) for u, c, t in zip(users, contexts, now,
                                                                                         strict=True)]
    requests += [RecommendationRequest(u, k, now_ms=NOW_MS) for u in list(bundle.user_history)[:4]]
    ours, theirs = served.recommend_batch(requests), reference.recommend_batch(requests)
    assert sum(s.item_id in added for answer in ours for s in answer) > len(added)
    for mine, other in zip(ours, theirs, strict=True):
        assert [s.item_id for s in mine] == [s.item_id for s in other]
        np.testing.assert_allclose([s.score for s in mine], [s.score for s in other], atol=1e-4, rtol=0)
