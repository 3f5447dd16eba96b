"""Serving cost per trigger of every candidate source, alone and batched, on the same requests.

Each registered model is fitted on the first share of the events in time order (streaming models instead
observe them through the worker's pipeline, in Redis under their own throw-away key prefix, as replay warms
them), then serves worker-like requests built from the contexts of the latest events: one `recommend` at a
time (p50/p99) and `recommend_batch` in chunks of each batch size (mean per trigger), after a warm-up call.
The figures say which sources a worker can afford per event and which dominate a blended trigger.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import redis
from tqdm.auto import tqdm

from consumers.replay.warm_up import warm_up
from measurement.benchmarks.serving_benchmark import trigger_requests
from measurement.report import BenchmarkResult
from model.interactions import events_to_frame
from model.recommender import RecommendationRequest, Recommender, StaticRecommenderSource
from model.registry import ModelContext, ModelSpec, ModelUnavailable, get_spec
from streamrec.events import Event
from streamrec.session_store import SessionStore
from streamrec.settings import Settings

log = logging.getLogger(__name__)

FIT_SHARE = 0.8


@dataclass(frozen=True)
class SourceTiming:
    """One source's timings: single `recommend` calls (ms each) and mean ms per trigger per batch size."""

    single_ms: list[float]
    batch_ms: dict[int, float]
    fit_seconds: float


def time_source(model: Recommender, requests: Sequence[RecommendationRequest],
                batch_sizes: Sequence[int]) -> tuple[list[float], dict[int, float]]:
    """Ms of each single `recommend`, and per batch size the mean ms per trigger of `recommend_batch` over chunks.

    One warm-up call of each shape comes first (tf.function tracing, FAISS and Redis connections) so the
    figures are steady-state serving, not first-call cost.
    """
    model.recommend(requests[0])
    single = []
    for request in requests:
        started = time.perf_counter()
        model.recommend(request)
        single.append(1000.0 * (time.perf_counter() - started))
    per_batch = {}
    for size in batch_sizes:
        model.recommend_batch(list(requests[:size]))
        spent = 0.0
        for i in range(0, len(requests), size):
            chunk = list(requests[i : i + size])
            started = time.perf_counter()
            model.recommend_batch(chunk)
            spent += time.perf_counter() - started
        per_batch[size] = 1000.0 * spent / len(requests)
    return single, per_batch


def _fit(spec: ModelSpec, train: pd.DataFrame, warm_events: Sequence[Event], client: redis.Redis | None,
         settings: Settings, epochs: int | None, progress: bool = False) -> tuple[Recommender, SessionStore | None]:
    """The model fitted on `train`, or (streaming) warmed by observing `warm_events` under a fresh key prefix.

    Returns the store of that prefix too, so the caller deletes its keys once the model is timed.
    """
    if spec.needs_redis and client is None:
        raise ModelUnavailable(f"{spec.name} keeps its state in Redis: none reachable at {settings.redis_url}")
    prefix = f"bench:{uuid.uuid4().hex[:10]}:{spec.name}:"
    context = ModelContext(train=train, redis=client, key_prefix=prefix, model_dir=settings.model_dir, epochs=epochs)
    model = spec.build(context)
    if not spec.learns_from_stream:
        return model, None
    store = SessionStore(client, settings.model_copy(update={"key_prefix": prefix}))
    try:
        warm_up(store, StaticRecommenderSource(model), warm_events, progress=progress, desc=f"{spec.name}: warm-up")
    except BaseException:
        store.delete_namespace()
        raise
    return model, store


def measure_source(name: str, train: pd.DataFrame, warm_events: Sequence[Event],
                   requests: Sequence[RecommendationRequest], batch_sizes: Sequence[int],
                   client: redis.Redis | None, settings: Settings, epochs: int | None = None,
                   progress: bool = False) -> SourceTiming:
    """Fit (or warm) one named source, time it, and delete whatever it wrote to Redis; ModelUnavailable passes up."""
    spec = get_spec(name)
    started = time.perf_counter()
    model, store = _fit(spec, train, warm_events, client, settings, epochs, progress)
    fit_seconds = time.perf_counter() - started
    try:
        single, per_batch = time_source(model, requests, batch_sizes)
    finally:
        if store is not None:
            store.delete_namespace()
    return SourceTiming(single, per_batch, fit_seconds)


def benchmark_sources(names: Sequence[str], events: Sequence[Event], n_requests: int = 256,
                      batch_sizes: Sequence[int] = (1, 32), k: int = 5, client: redis.Redis | None = None,
                      settings: Settings | None = None, epochs: int | None = None, source: str = "",
                      progress: bool = True) -> BenchmarkResult:
    """One row per source that could be built (ms per trigger alone and batched, fit/warm seconds); the others
    are listed under `info["skipped"]` with the reason."""
    settings = settings or Settings()
    ordered = sorted(events, key=lambda e: e.ts)  # stable: equal times keep their order
    cut = int(len(ordered) * FIT_SHARE)
    train = events_to_frame(ordered[:cut])
    requests = trigger_requests(events_to_frame(ordered), n_requests, k)
    if not requests:
        raise ValueError("no product events to build requests from")
    batch_columns = {size: f"batch of {size}" for size in batch_sizes}
    columns = ["recommend p50", "recommend p99", *batch_columns.values(), "fit/warm"]
    rows: dict[str, dict[str, float | int | None]] = {}
    samples: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    for name in tqdm(names, desc="candidate sources", unit="model", disable=not progress):
        try:
            timing = measure_source(name, train, ordered[:cut], requests, batch_sizes, client, settings, epochs,
                                    progress)
        except ModelUnavailable as error:
            log.warning("skipping %s: %s", name, error)
            skipped[name] = str(error)
            continue
        rows[name] = {"recommend p50": float(np.percentile(timing.single_ms, 50)),
                      "recommend p99": float(np.percentile(timing.single_ms, 99)),
                      **{batch_columns[s]: ms for s, ms in timing.batch_ms.items()}, "fit/warm": timing.fit_seconds}
        samples[name] = timing.single_ms
    units = {c: "s" if c == "fit/warm" else "ms per trigger" for c in columns}
    return BenchmarkResult(
        title=f"Serving cost per trigger of each candidate source, ms ({len(requests)} requests, top {k})",
        row_label="source", units=units, digits={c: 2 if c == "fit/warm" else 3 for c in columns}, rows=rows,
        info={"data": source or f"{len(ordered):,} events", "fit/warm events": cut,
              "requests": f"{len(requests)} contexts before the latest product events",
              "figure": "recommend: single calls after one warm-up; batch of N: recommend_batch over chunks of N, "
                        "total / requests",
              "skipped": skipped},
        samples=samples, samples_label="ms per single recommend()",
    )
