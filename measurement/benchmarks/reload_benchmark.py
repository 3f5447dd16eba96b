"""Latency around a hot reload: the worker's pipeline serving a published hybrid while a retrained one is published.

The pipeline runs in process over simulated traffic in batches of the worker's size (Redis is real; Kafka is left
out: this times the model swap, not the broker), with the worker's background loader. A second hybrid, trained on
a later stretch of traffic, is published mid-run; per batch we record the wall time of `prepare` and which model
answered. Figures: p50 / p99 / max batch latency before the publish, while the new version loads, and after the
swap, and the retrain's own time.
"""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path

import numpy as np
from tqdm import tqdm

from consumers.training.hybrid_training import publish_hybrid
from consumers.worker.recommendation_pipeline import RecommendationPipeline
from measurement.report import BenchmarkResult
from model.interactions import events_to_frame
from model.serving import make_recommender_source
from producers.simulator import TrafficConfig, generate_events, world_for_events
from streamrec.session_store import SessionStore
from streamrec.settings import Settings


def run_reload_benchmark(settings: Settings, model_dir: Path, train_events: int = 8000, live_events: int = 4000,
                         batch: int = 100, neural: bool = False, after_batches: int = 40,
                         max_events: int = 200_000, progress: bool = True) -> BenchmarkResult:
    """`live_events` are served before the publish; serving goes on until `after_batches` after the swap."""
    settings = settings.model_copy(update={
        "key_prefix": f"bench:reload:{uuid.uuid4().hex[:8]}:", "model_dir": model_dir,
        "model_reload_interval_s": 0.5,
    })
    world, _ = world_for_events(max_events, seed=7)
    past = list(itertools.islice(generate_events(world, TrafficConfig(seed=1007)), 2 * train_events))
    live = generate_events(world, TrafficConfig(seed=7))
    started = time.monotonic()
    publish_hybrid(events_to_frame(past[:train_events]), model_dir, settings, neural=neural, progress=False)
    first_train_s = time.monotonic() - started
    client = settings.redis_client()
    store = SessionStore(client, settings)
    source = make_recommender_source(settings, client)
    pipeline = RecommendationPipeline(store, source, settings)
    timings: list[tuple[float, str, str]] = []  # (ms, phase, model version)
    phase = "before the publish"
    retrain_s = 0.0
    try:
        publish_at = live_events // batch
        bar = tqdm(desc="reload benchmark", unit="batch", disable=not progress)
        since_swap = 0
        for j in itertools.count():
            events = list(itertools.islice(live, batch))
            if not events or since_swap >= after_batches:
                break
            bar.update()
            if j == publish_at:  # retrain in a thread, as `streamrec trainer` would in its own process
                import threading

                def retrain() -> None:
                    nonlocal retrain_s
                    began = time.monotonic()
                    publish_hybrid(events_to_frame(past[train_events:]), model_dir, settings, neural=neural,
                                   progress=False)
                    retrain_s = time.monotonic() - began

                trainer = threading.Thread(target=retrain, daemon=True)
                trainer.start()
                phase = "while retraining and loading"
            began = time.perf_counter()
            pipeline.confirm(pipeline.prepare(events))
            ms = 1000 * (time.perf_counter() - began)
            version = source.current().version
            if phase != "after the swap" and source.reloads >= 2:
                phase = "after the swap"
            since_swap += phase == "after the swap"
            timings.append((ms, phase, version))
        bar.close()
        trainer.join()
    finally:
        store.delete_namespace()
    rows: dict[str, dict[str, float | int | None]] = {}
    for name in ("before the publish", "while retraining and loading", "after the swap"):
        ms = np.array([t for t, p, _ in timings if p == name])
        rows[name] = {"batches": len(ms), "p50": float(np.percentile(ms, 50)) if len(ms) else None,
                      "p99": float(np.percentile(ms, 99)) if len(ms) else None,
                      "max": float(ms.max()) if len(ms) else None}
    return BenchmarkResult(
        title=f"Batch latency around a hot reload of the hybrid (batches of {batch} events)", row_label="moment",
        units={"batches": "count", "p50": "ms", "p99": "ms", "max": "ms"}, digits={"p50": 1, "p99": 1, "max": 1},
        rows=rows,
        info={"first training s": round(first_train_s, 1), "retrain s": round(retrain_s, 1),
              "versions served": sorted({v for _, _, v in timings}), "reloads": source.reloads,
              "note": "pipeline.prepare + confirm per batch, Redis real, no broker; the retrain runs in a thread "
                      "of the same process (2 cores), so 'while retraining' also carries the training's CPU"},
    )
