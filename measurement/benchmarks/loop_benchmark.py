"""The worker's loop without the broker: the bench's events through `RecommendationPipeline.prepare` and `confirm`,
in batches of the worker's size, with the model `streamrec worker` would serve, on a real Redis.

What it answers: how much CPU the hot path costs per event with no broker in the way (the worker's share of the
box), and where it goes (the pipeline's stage timer, wall and CPU per stage); and, for a change meant to make the
path faster and nothing else, whether users would be sent anything different. The notifications' digest (trigger,
items and scores to 4 decimals, in order) is the same for the same events, settings and model: compare it before and
after the change, or diff the `dump` files. Events keep their simulated times, so the run is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from consumers.worker.recommendation_pipeline import RecommendationPipeline
from measurement.benchmarks.pipeline_benchmark import stage_result
from measurement.report import BenchmarkResult
from model.serving import make_recommender_source
from streamrec.events import Event
from streamrec.notifications import Notification
from streamrec.session_store import SessionStore
from streamrec.settings import Settings


@dataclass(frozen=True)
class LoopRun:
    events: int
    batches: int
    notifications: int
    served: str
    wall_s: float
    cpu_s: float
    digest: str
    stages: dict[str, dict[str, float]]


def notification_line(notification: Notification) -> str:
    """What a user is sent, as one JSON line: the trigger, then each item and its score to 4 decimals."""
    return json.dumps([notification.trigger_event_id,
                       [(item.item_id, round(item.score, 4)) for item in notification.items]])


def run_loop(settings: Settings, events: list[Event], batch: int, dump: Path | None = None) -> LoopRun:
    """Every event through the pipeline in batches of `batch`, under a fresh key prefix (deleted afterwards)."""
    scoped = settings.model_copy(update={"key_prefix": f"{settings.key_prefix}loop:{uuid.uuid4().hex[:8]}:"})
    client = scoped.redis_client()
    store = SessionStore(client, scoped)
    source = make_recommender_source(scoped, client)
    try:
        # The newest saved model loaded with the source; the first `current()` settles the heap, as in a worker.
        served = source.current().name
        pipeline = RecommendationPipeline(store, source, scoped)
        digest, sent = hashlib.sha256(), 0
        lines = dump.open("w") if dump is not None else None
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            for start in range(0, len(events), batch):
                notifications = pipeline.prepare(events[start:start + batch])
                pipeline.confirm(notifications)
                sent += len(notifications)
                for notification in notifications:
                    line = notification_line(notification)
                    digest.update(line.encode() + b"\n")
                    if lines is not None:
                        lines.write(line + "\n")
        finally:
            if lines is not None:
                lines.close()
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        return LoopRun(len(events), -(-len(events) // batch), sent, served, wall, cpu, digest.hexdigest()[:16],
                       pipeline.stages.summary(len(events)))
    finally:
        store.delete_namespace()


def loop_result(run: LoopRun) -> BenchmarkResult:
    """The run's stages as the pipeline bench's stage table (wall and CPU per batch, µs per event, share of the
    loop), with the run's totals in its info."""
    table = stage_result({"served": run.served, "events": run.events, "stages": run.stages},
                         "the worker's loop without the broker")
    table.info.update({
        "batches": run.batches, "notifications": run.notifications, "wall s": round(run.wall_s, 3),
        "cpu s": round(run.cpu_s, 3), "cpu per event (µs)": round(1e6 * run.cpu_s / max(run.events, 1), 1),
        "events/s (this process alone)": round(run.events / run.wall_s) if run.wall_s else None,
        "digest of what users are sent": run.digest})
    return table
