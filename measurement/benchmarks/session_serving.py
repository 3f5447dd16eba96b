"""Serving cost of a saved session model: single `recommend` calls, test prefixes of an SR-GNN benchmark as contexts.

Every call scores the full catalogue and keeps the top 20, as the worker asks for one user at a time.
"""

from __future__ import annotations

import time

import numpy as np

from measurement.report import BenchmarkResult
from model.datasets.srgnn import SessionBenchmark
from model.recommender import RecommendationRequest, Recommender
from streamrec.session_store import SessionContext


def prefix_requests(bench: SessionBenchmark, n_requests: int, k: int = 20) -> list[RecommendationRequest]:
    """`n_requests` test prefixes drawn at random (seed 0), newest item first as the session store keeps them."""
    rows = np.random.default_rng(0).choice(len(bench.test), size=min(n_requests, len(bench.test)), replace=False)
    return [
        RecommendationRequest(
            user_id="bench",
            k=k,
            context=SessionContext(
                user_id="bench",
                session_id=f"t{row}",
                recent_items=tuple(str(i) for i in bench.test.items[row, : bench.test.lengths[row]][::-1]),
            ),
        )
        for row in rows
    ]


def serving_latency(recommender: Recommender, bench: SessionBenchmark, name: str, n_requests: int = 300,
                    k: int = 20) -> BenchmarkResult:
    """Milliseconds per single `recommend` call after one warm-up call: p50, p95, mean."""
    requests = prefix_requests(bench, n_requests, k)
    recommender.recommend(requests[0])  # warm-up: traces the serving function once
    timings = []
    for request in requests:
        started = time.perf_counter()
        recommender.recommend(request)
        timings.append((time.perf_counter() - started) * 1000.0)
    row = {"requests": len(timings), "p50": float(np.percentile(timings, 50)),
           "p95": float(np.percentile(timings, 95)), "mean": float(np.mean(timings))}
    return BenchmarkResult(
        title=f"Session model serving: single recommend() calls, top {k} of the full catalogue", row_label="model",
        units={"requests": "count", "p50": "ms", "p95": "ms", "mean": "ms"}, rows={name: row},
        info={"contexts": f"{bench.name} test prefixes (seed 0)"}, samples={name: timings},
    )
