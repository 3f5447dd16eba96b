"""How retrieval grows with the catalogue: the index the worker would build for N items (flat up to
`EXACT_LIMIT`, HNSW above), its build time, one trigger's search and a poll's worth of searches in one call, its
size in memory, and, for HNSW, its recall against exact search.

Vectors are random unit vectors of the served width (33: 32 embedding dims + the popularity column), so the figures
are the index's, not a model's. The build may use every core (a worker builds or loads an index once); searches run
on one thread, as the worker serves (`serve_single_threaded`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from measurement.report import BenchmarkResult


def rss_mb() -> float:
    """This process's resident memory now (MB), from /proc (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _median_ms(action, repeats: int) -> float:
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


def benchmark_catalogue(sizes: Sequence[int] = (10_000, 100_000, 1_000_000), dim: int = 33, k: int = 200,
                        batch: int = 100, exact_limit: int | None = None, progress: bool = True) -> BenchmarkResult:
    import faiss

    from model.index.faiss_index import EXACT_LIMIT, ItemIndex, recall_vs_exact

    limit = EXACT_LIMIT if exact_limit is None else exact_limit
    rng = np.random.default_rng(0)
    rows: dict[str, dict[str, float | int | None]] = {}
    cores = faiss.omp_get_max_threads()
    for n in tqdm(sizes, desc="catalogue sizes", disable=not progress):
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        probe = vectors[rng.choice(n, batch, replace=False)] + rng.normal(0, 0.3, (batch, dim)).astype(np.float32)
        gc.collect()
        faiss.omp_set_num_threads(cores)
        started = time.perf_counter()
        index = ItemIndex.build(vectors, exact_limit=limit)
        build_s = time.perf_counter() - started
        size_mb = faiss.serialize_index(index.index).nbytes / 2**20  # vectors and graph links, as held
        faiss.omp_set_num_threads(1)
        one = _median_ms(lambda index=index, first=probe[:1]: index.search(first, k), 30)
        many = _median_ms(lambda index=index, probe=probe: index.search(probe, k), 5)
        recall = recall_vs_exact(index, vectors, probe[:50], k) if index.kind == "hnsw" else 1.0
        rows[f"{n:,} items ({index.kind})"] = {
            "items": n, "build": build_s, "search, 1 trigger": one, f"search, {batch} triggers": many,
            "index size": size_mb, "process RSS": rss_mb(), f"recall@{k}": recall,
        }
        del index, vectors
        gc.collect()
    faiss.omp_set_num_threads(cores)
    return BenchmarkResult(
        title=f"Retrieval by catalogue size ({dim} dims, top {k}, the index the worker builds)", row_label="catalogue",
        units={"items": "count", "build": "s", "search, 1 trigger": "ms", f"search, {batch} triggers": "ms",
               "index size": "MB", "process RSS": "MB", f"recall@{k}": "fraction"},
        digits={"build": 2, "search, 1 trigger": 3, f"search, {batch} triggers": 2, "index size": 1, "process RSS": 0,
                f"recall@{k}": 4},
        rows=rows,
        info={"index": f"flat up to {limit:,} items, HNSW (M 32, efConstruction 80, efSearch 128) above",
              "build threads": cores, "search threads": 1,
              "index size": "the serialised index (its vectors and HNSW links): what it holds in memory",
              "process RSS": "this process after the build, with the vectors it was built from",
              "figures": "median of 30 single searches and of 5 batched ones"},
    )
