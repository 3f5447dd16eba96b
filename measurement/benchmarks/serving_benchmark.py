"""Serving cost per trigger: query tower + FAISS + ranker as the worker calls them, against `model.predict`.

Requests are built from real session contexts (the context before each of the frame's latest product
events), timed per stage over many repeats; figures are milliseconds per trigger, as `BenchmarkResult`s for the
one report writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from measurement.report import BenchmarkResult
from model.bundle import ModelBundle
from model.index.faiss_index import query_with_prior
from model.recommender import RecommendationRequest
from model.two_tower.examples import ITEM_EVENTS, contexts_before, query_inputs, sort_by_time
from model.two_tower.features import utc_ms
from model.two_tower.recommender import TwoTowerRecommender


def trigger_requests(frame: pd.DataFrame, n: int, k: int = 5) -> list[RecommendationRequest]:
    """Requests as the worker makes them, from the contexts of the frame's last `n` product events."""
    frame = sort_by_time(frame)
    contexts = contexts_before(frame)
    rows = np.flatnonzero(frame["event_type"].isin(ITEM_EVENTS).to_numpy() & frame["item_id"].notna().to_numpy())[-n:]
    ts = utc_ms(frame["ts"])
    return [RecommendationRequest(user_id=contexts[r].user_id, k=k, context=contexts[r], now_ms=int(ts[r]),
                                  trigger_item=str(frame["item_id"].iloc[r])) for r in rows]


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    action()  # warm-up: traces the tf.functions once
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def _stage_times(recommender: TwoTowerRecommender, chunk: list[RecommendationRequest], candidates: int,
                 repeats: int) -> dict[str, float]:
    """Median ms of each serving stage for one batch of requests."""
    bundle, spec = recommender.bundle, recommender.spec
    contexts = [r.context for r in chunk]
    users = [r.user_id for r in chunk]
    now = np.array([r.now_ms for r in chunk])
    inputs = query_inputs(spec, users, contexts, now)
    queries = query_with_prior(recommender.encode(inputs))
    _, found = bundle.index.search(queries, candidates)
    kept = [(f[f > 0].astype(np.int64), np.zeros((f > 0).sum(), np.float32)) for f in found]
    stage = {
        "query features": _median_ms(lambda: query_inputs(spec, users, contexts, now), repeats),
        "query tower (tf.function)": _median_ms(lambda: recommender.encode(inputs), repeats),
        "query tower (model.predict)": _median_ms(lambda: bundle.towers.query.predict(inputs, verbose=0),
                                                  max(5, repeats // 10)),
        f"FAISS top-{candidates} ({bundle.index.kind})": _median_ms(
            lambda: bundle.index.search(queries, candidates), repeats),
    }
    if recommender.rank is not None:
        stage["ranker features + scoring"] = _median_ms(
            lambda: recommender.rank_candidates(chunk, contexts, kept), repeats)
    stage["recommend_batch total"] = _median_ms(lambda: recommender.recommend_batch(chunk), repeats)
    return stage


def benchmark_serving(bundle: ModelBundle, requests: Sequence[RecommendationRequest], batch_sizes=(1, 32),
                      candidates: int = 200, repeats: int = 50, progress: bool = True) -> BenchmarkResult:
    """Median ms per trigger of each stage and of the whole `recommend_batch`, per batch size."""
    recommender = TwoTowerRecommender(bundle, candidates=candidates, use_ranker=True)  # cost of the full stack
    rows: dict[str, dict[str, float | int | None]] = {}
    columns = [f"batch of {batch}" for batch in batch_sizes]
    for batch, column in zip(tqdm(batch_sizes, desc="serving benchmark", disable=not progress), columns, strict=True):
        stage = _stage_times(recommender, list(requests[:batch]), candidates, repeats)
        for name, value in stage.items():
            rows.setdefault(name, {})[column] = value / batch
    return BenchmarkResult(
        title=f"Serving cost per trigger, ms ({len(bundle.index):,} items in the index)", row_label="stage",
        units=dict.fromkeys(columns, "ms per trigger"), digits=dict.fromkeys(columns, 4), rows=rows,
        info={"candidates": candidates, "repeats": repeats, "figure": "median over the repeats / batch size"},
    )


def benchmark_index(sizes=(50_000, 250_000), dim: int = 33, k: int = 200, queries: int = 200,
                    progress: bool = True) -> BenchmarkResult:
    """Flat vs HNSW on random unit vectors: ms per single-query top-k search and HNSW recall against exact."""
    from model.index.faiss_index import ItemIndex, recall_vs_exact, serve_single_threaded

    serve_single_threaded()  # as the worker searches
    rng = np.random.default_rng(0)
    rows = {}
    for n in tqdm(sizes, desc="index benchmark", disable=not progress):
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        probe = vectors[rng.choice(n, queries, replace=False)] + rng.normal(0, 0.3, (queries, dim)).astype(np.float32)
        for name, limit in (("flat", n), ("hnsw", n - 1)):
            started = time.perf_counter()
            index = ItemIndex.build(vectors, exact_limit=limit)
            build_s = time.perf_counter() - started
            one = _median_ms(lambda index=index, first=probe[:1]: index.search(first, k), 50)
            rows[f"{name} {n:,}"] = {"build": build_s, f"query top-{k}": one,
                                     f"recall@{k} vs exact": recall_vs_exact(index, vectors, probe, k)}
    return BenchmarkResult(
        title=f"Flat vs HNSW on random unit vectors ({dim} dims, one query, top {k})", row_label="index",
        units={"build": "s", f"query top-{k}": "ms", f"recall@{k} vs exact": "fraction"},
        digits={"build": 2, f"query top-{k}": 3, f"recall@{k} vs exact": 4}, rows=rows,
        info={"queries": queries, "figure": "median ms of one single-query search over 50 repeats"},
    )
