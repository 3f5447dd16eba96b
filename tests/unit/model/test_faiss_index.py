"""FAISS index: the exact index returns the brute-force top-k; HNSW is measured against it; files round-trip."""

from __future__ import annotations

import numpy as np

from model.index.faiss_index import ItemIndex, exact_top_k, recall_vs_exact


def _unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_index_top_k_equals_brute_force():
    rng = np.random.default_rng(0)
    items, queries = _unit_vectors(rng, 3000, 24), _unit_vectors(rng, 50, 24)
    index = ItemIndex.build(items)
    assert index.kind == "flat"
    scores, rows = index.search(queries, 20)
    brute = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :20]
    assert (rows == brute).all()
    assert np.allclose(scores, np.take_along_axis(queries @ items.T, brute, axis=1), atol=1e-5)
    assert (exact_top_k(items, queries, 20) == brute).all()
    assert recall_vs_exact(index, items, queries, 20) == 1.0


def test_large_catalogues_switch_to_hnsw_with_measured_recall():
    rng = np.random.default_rng(1)
    items, queries = _unit_vectors(rng, 5000, 16), _unit_vectors(rng, 100, 16)
    index = ItemIndex.build(items, exact_limit=1000)
    assert index.kind == "hnsw"
    recall = recall_vs_exact(index, items, queries, 10)
    assert 0.9 <= recall <= 1.0


def test_index_round_trips_through_a_file(tmp_path):
    rng = np.random.default_rng(2)
    items, queries = _unit_vectors(rng, 500, 8), _unit_vectors(rng, 5, 8)
    index = ItemIndex.build(items)
    index.save(tmp_path / "items.faiss")
    loaded = ItemIndex.load(tmp_path / "items.faiss")
    assert loaded.kind == "flat" and len(loaded) == 500
    assert (loaded.search(queries, 7)[1] == index.search(queries, 7)[1]).all()
    # Items added later (attribute-based vectors) are found too.
    new_row = loaded.add(queries[:1])
    assert loaded.search(queries[:1], 1)[1][0, 0] == new_row[0]
