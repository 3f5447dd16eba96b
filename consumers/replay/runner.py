"""Drive the worker's `RecommendationPipeline` over replay input, one model at a time, side by side.

A first pass over the input writes events.parquet and builds the training frame of the warm-up events. Per
model: a fresh namespace (`replay:<run>:<model>:` keys, `replay.<run>.<model>.notifications` topic); the
model is fitted on that frame (offline models) or learns the warm-up events by observing (streaming models);
warm-up events build session state with triggers off; then the window is replayed in batches that end at each
trigger, so no trigger sees a later event. Each model reads the input afresh (`ReplayEvents.replay_pass`), so
a streamed topic is never held in memory. Nothing is written under the live prefix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import chain
from pathlib import Path

import pandas as pd
import redis
from pydantic import BaseModel
from tqdm import tqdm

from consumers.replay.batching import leak_free_batches
from consumers.replay.namespace import new_run_id, replay_settings
from consumers.replay.recording import RecordingRecommender
from consumers.replay.records import ReplayRecord
from consumers.replay.replay_events import ReplayEvents, ReplayOutline
from consumers.replay.retraining import Retraining
from consumers.replay.sinks import JsonlSink, ReplaySink, TopicSink
from consumers.replay.warm_up import warm_up
from consumers.worker.recommendation_pipeline import PipelineStats, RecommendationPipeline
from model.exploration import YoungItemExploration, explored, exploring
from model.recommender import Recommender, StaticRecommenderSource
from model.registry import ModelContext, ModelSpec, ModelUnavailable, get_spec
from streamrec.events import Event
from streamrec.notifications import Notification
from streamrec.session_store import SessionStore
from streamrec.settings import Settings

log = logging.getLogger(__name__)


class ModelRun(BaseModel):
    name: str
    version: str
    key_prefix: str
    notifications_topic: str | None
    window_events: int
    triggers: int
    notifications: int
    no_candidates: int
    fit_seconds: float
    replay_seconds: float  # the window through the pipeline, retraining excluded (live, it runs beside)
    events_per_s: float
    retrains: int = 0  # with a retrain cadence: models swapped in during the window
    retrain_seconds: float = 0.0


class ReplayManifest(BaseModel):
    """What was replayed, how, and per model what came out (written as manifest.json beside the records)."""

    run_id: str
    source: str
    warmup_events: int
    window_events: int
    window_start: datetime | None
    window_end: datetime | None
    depth: int
    settings: dict[str, object]
    models: list[ModelRun]
    skipped: dict[str, str]


class ReplayWindow(BaseModel):
    """Where the evaluated window starts in events.parquet (everything before it is warm-up/training)."""

    start: datetime | None
    warmup_events: int


def _settings_digest(settings: Settings) -> dict[str, object]:
    keys = (
        "trigger_on_task_completed", "trigger_on_add_to_cart", "trigger_on_purchase", "trigger_every_nth_page_view",
        "notify_cooldown_s", "recommendations_per_notification", "exploration_share", "exploration_young_hours",
    )
    return {k: getattr(settings, k) for k in keys}


def replay_model(
    spec: ModelSpec,
    data: ReplayEvents,
    live: Settings,
    client: redis.Redis,
    run_id: str,
    sinks: Sequence[ReplaySink],
    depth: int = 20,
    train: pd.DataFrame | None = None,
    truth_path: Path | None = None,
    publish: bool = False,
    keep_state: bool = False,
    progress: bool = True,
    outline: ReplayOutline | None = None,
    retrain_every_s: float | None = None,
    retrain_window_s: float = 7 * 24 * 3600,
) -> ModelRun:
    """Replay `data` through the pipeline with one model in its own namespace; returns its run summary.

    `outline` and `train` come from `data.outline()` (done here when not given); `train` may also be a frame
    of the caller's. With `retrain_every_s`, the model is retrained every that many seconds of event time on the
    last `retrain_window_s` of events and swapped in between batches (models that only learn from the stream are
    left as they are: they are fresh already).
    """
    if outline is None or train is None:
        outline, frame = data.outline(progress=progress)
        train = train if train is not None else frame
    settings = replay_settings(live, run_id, spec.name)
    store = SessionStore(client, settings)
    store.delete_namespace()  # a clean namespace, even when a run id is reused
    topic_sink = TopicSink(settings) if publish else None
    all_sinks = [*sinks, *([topic_sink] if topic_sink else [])]
    try:
        started = time.monotonic()
        model = _build_model(spec, train, live, client, settings, depth, truth_path)
        source = StaticRecommenderSource(model)
        retraining = _retraining(spec, train, live, client, settings, truth_path, retrain_every_s, retrain_window_s)
        with data.replay_pass() as one_pass:
            warm_up(store, source, one_pass.warmup(), progress=progress, desc=f"{spec.name}: warm-up",
                    total=outline.warmup_events)
            fit_seconds = time.monotonic() - started
            stats, seconds = _replay_window(spec.name, one_pass.window(), outline.window_events, store, source,
                                            model, all_sinks, progress, retraining)
    finally:
        if topic_sink is not None:
            topic_sink.close()
        if not keep_state:
            store.delete_namespace()
    run = ModelRun(
        name=spec.name, version=model.version, key_prefix=settings.key_prefix,
        notifications_topic=settings.notifications_topic if publish else None,
        window_events=outline.window_events, triggers=stats.triggers, notifications=stats.notifications,
        no_candidates=stats.no_candidates, fit_seconds=round(fit_seconds, 3), replay_seconds=round(seconds, 3),
        events_per_s=round(outline.window_events / seconds, 1) if seconds > 0 else 0.0,
        retrains=len(retraining.done) if retraining else 0,
        retrain_seconds=round(sum(r.seconds for r in retraining.done), 3) if retraining else 0.0,
    )
    log.info("replayed %s: %d events in %.1fs (%.0f ev/s), %d notifications",
             spec.name, run.window_events, seconds, run.events_per_s, run.notifications)
    return run


def _build_model(
    spec: ModelSpec,
    train: pd.DataFrame,
    live: Settings,
    client: redis.Redis,
    settings: Settings,
    depth: int,
    truth_path: Path | None,
) -> RecordingRecommender:
    """The model fitted on the warm-up frame `train`, wrapped to record what it ranked per trigger."""
    context = ModelContext(
        train=train, redis=client, key_prefix=settings.key_prefix, truth_path=truth_path,
        model_dir=live.model_dir,
    )
    # The exploration budget of the live settings, as the worker would serve it (in the model's namespace).
    model = exploring(spec.build(context), client, settings)
    return RecordingRecommender(model, depth, learns_from_stream=spec.learns_from_stream)


def _retraining(spec: ModelSpec, train: pd.DataFrame, live: Settings, client: redis.Redis, settings: Settings,
                truth_path: Path | None, every_s: float | None, window_s: float) -> Retraining | None:
    """The cadence's retrainer for `spec` (None without a cadence, or for a model that only learns online)."""
    if not every_s:
        return None
    retrain = spec.retrain
    if retrain is None:
        if spec.learns_from_stream:
            log.info("%s learns from the stream: not retrained", spec.name)
            return None
        retrain = lambda context, _running: spec.build(context)  # noqa: E731 - an offline model is refitted

    def build(frame: pd.DataFrame, running: Recommender) -> Recommender:
        context = ModelContext(train=frame, redis=client, key_prefix=settings.key_prefix, truth_path=truth_path,
                               model_dir=live.model_dir)
        new = retrain(context, explored(running))
        return running.with_model(new) if isinstance(running, YoungItemExploration) else new

    return Retraining(int(every_s * 1000), int(window_s * 1000), train, build)


def _replay_window(
    name: str,
    window: Iterable[Event],
    total: int,
    store: SessionStore,
    source: StaticRecommenderSource,
    model: RecordingRecommender,
    sinks: Sequence[ReplaySink],
    progress: bool,
    retraining: Retraining | None = None,
) -> tuple[PipelineStats, float]:
    """Run the window (`total` events, read lazily) through the pipeline in leak-free batches, writing each
    batch's records to `sinks`. Returns the pipeline's stats and the seconds the window took (retraining not
    counted). With `retraining`, a retrain owed by the next batch's time is done before that batch.
    """
    settings = store.settings
    events = iter(window)
    first = next(events, None)
    now: list[datetime] = [first.ts] if first is not None else []
    # Deterministic output: a notification's created_at is its batch's event time, not the wall clock.
    pipeline = RecommendationPipeline(store, source, settings, clock=lambda: now[0])
    started = time.monotonic()
    bar = tqdm(total=total, desc=f"{name}: replay", unit="ev", disable=not progress)
    for batch in leak_free_batches(chain([first], events) if first is not None else (), settings):
        now[0] = batch[-1].ts
        at_ms = int(now[0].timestamp() * 1000)
        if retraining is not None and retraining.due(at_ms):  # on the batches before this one (all in its past)
            paused = time.monotonic()
            model.swap(retraining.retrain(at_ms, model.inner))
            started += time.monotonic() - paused
        notifications = pipeline.prepare(batch)
        records = [_record(n, model) for n in notifications]
        for sink in sinks:
            sink.write(records)
        pipeline.confirm(notifications)
        model.forget()
        if retraining is not None:
            retraining.observe(batch)
        bar.update(len(batch))
        elapsed = time.monotonic() - started
        if elapsed > 0:
            bar.set_postfix_str(f"{bar.n / elapsed:.0f} ev/s", refresh=False)
    bar.close()
    return pipeline.stats, time.monotonic() - started


def _record(notification: Notification, model: RecordingRecommender) -> ReplayRecord:
    """A notification with the full ranked list (and scores) the model produced for its trigger."""
    ranked = model.take(notification.user_id, int(notification.trigger_ts.timestamp() * 1000))
    return ReplayRecord(
        notification=notification, ranked=[s.item_id for s in ranked], scores=[s.score for s in ranked]
    )


def replay_side_by_side(
    model_names: Sequence[str],
    data: ReplayEvents,
    live: Settings,
    out_dir: Path,
    client: redis.Redis | None = None,
    run_id: str | None = None,
    depth: int = 20,
    truth_path: Path | None = None,
    publish: bool = False,
    progress: bool = True,
    on_outline: Callable[[ReplayOutline], None] | None = None,
    retrain_every_s: float | None = None,
    retrain_window_s: float = 7 * 24 * 3600,
) -> ReplayManifest:
    """Replay the same events with each model; write events.parquet, notifications/<model>.jsonl, manifest.json.

    `on_outline` hears the counts once the first pass over `data` has them (before any model runs).
    """
    client = client or redis.Redis.from_url(live.redis_url)
    run_id = run_id or new_run_id()
    out_dir.mkdir(parents=True, exist_ok=True)
    outline, train = data.outline(out_dir / "events.parquet", progress=progress)
    if on_outline is not None:
        on_outline(outline)
    (out_dir / "window.json").write_text(
        ReplayWindow(start=outline.window_start, warmup_events=outline.warmup_events).model_dump_json()
    )
    runs: list[ModelRun] = []
    skipped: dict[str, str] = {}
    for name in model_names:
        try:
            spec = get_spec(name)
            sink = JsonlSink(out_dir / "notifications" / f"{name}.jsonl")
            try:
                runs.append(
                    replay_model(spec, data, live, client, run_id, [sink], depth, train, truth_path, publish,
                                 progress=progress, outline=outline, retrain_every_s=retrain_every_s,
                                 retrain_window_s=retrain_window_s)
                )
            finally:
                sink.close()
        except ModelUnavailable as error:
            log.warning("skipping %s: %s", name, error)
            skipped[name] = str(error)
            (out_dir / "notifications" / f"{name}.jsonl").unlink(missing_ok=True)
    manifest = ReplayManifest(
        run_id=run_id, source=data.source, warmup_events=outline.warmup_events,
        window_events=outline.window_events, window_start=outline.window_start, window_end=outline.window_end,
        depth=depth, settings=_settings_digest(live), models=runs, skipped=skipped,
    )
    (out_dir / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return manifest
