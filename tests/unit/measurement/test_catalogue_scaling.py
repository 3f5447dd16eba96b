"""The catalogue table: the index the worker would build at each size, its costs and memory, HNSW's recall."""

from __future__ import annotations

from measurement.benchmarks.catalogue_scaling import benchmark_catalogue, rss_mb


def test_each_size_gets_the_index_the_worker_builds_with_its_costs():
    result = benchmark_catalogue((2_000, 6_000), dim=9, k=50, batch=20, exact_limit=3_000, progress=False)
    flat, hnsw = result.rows["2,000 items (flat)"], result.rows["6,000 items (hnsw)"]
    assert flat["recall@50"] == 1.0 and 0.5 < hnsw["recall@50"] <= 1.0
    assert hnsw["index size"] > flat["index size"] * 3 * 0.9  # 3x the vectors, plus the graph's links
    assert flat["index size"] >= 2_000 * 9 * 4 / 2**20 and hnsw["build"] > flat["build"] > 0
    assert flat["search, 20 triggers"] > 0 and result.info["search threads"] == 1
    assert rss_mb() > 10
