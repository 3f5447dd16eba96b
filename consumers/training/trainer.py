"""Continuous training: every `every_s`, retrain the hybrid on the last `window_s` of the events topic and publish it.

Workers pick the new version up in the background and swap it in between two batches (`model.serving`), so a
retrain never pauses the stream. The window is applied to event time (the topic is read outside any group, as
replay reads it); versions beyond the newest `keep` are deleted, oldest first (never the one just published).
A failed round is logged and retried at the next tick: the served version stays.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel

from consumers.replay.sources import read_topic_events
from consumers.training.hybrid_training import publish_hybrid
from model.bundle_paths import list_bundles
from model.interactions import events_to_frame
from streamrec.events import utc_now
from streamrec.settings import Settings

log = logging.getLogger(__name__)


class TrainingRound(BaseModel):
    started: str
    events: int
    published: str | None
    seconds: float
    skipped: str | None = None


def train_once(settings: Settings, topic: str, window_s: float, model_dir: Path, min_events: int = 1000,
               log_events: int = 40_000, neural: bool = True, keep: int = 3,
               tune_als: bool = False) -> TrainingRound:
    """One round: the topic's events of the last `window_s` (event time), the hybrid trained and published."""
    started = time.monotonic()
    now = utc_now()
    since = now - timedelta(seconds=window_s)
    events = [e for e in read_topic_events(settings, topic, until=now, progress=False) if e.ts >= since]
    if len(events) < min_events:
        return TrainingRound(started=now.isoformat(), events=len(events), published=None,
                             seconds=round(time.monotonic() - started, 2),
                             skipped=f"{len(events)} events in the window, fewer than {min_events}")
    frame = events_to_frame(sorted(events, key=lambda e: e.ts))
    path, _ = publish_hybrid(frame, model_dir, settings, log_events=log_events, neural=neural, progress=False,
                             tune_als=tune_als)
    _prune(model_dir, keep, path)
    return TrainingRound(started=now.isoformat(), events=len(events), published=path.name,
                         seconds=round(time.monotonic() - started, 2))


def _prune(model_dir: Path, keep: int, newest: Path) -> None:
    versions = [p for p in list_bundles(model_dir) if p != newest]
    for old in versions[: max(0, len(versions) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def run_trainer(settings: Settings, topic: str, window_s: float, every_s: float, model_dir: Path,
                stop: threading.Event, rounds: int | None = None, **options) -> list[TrainingRound]:
    """Train rounds every `every_s` (measured start to start) until `stop` is set or `rounds` are done."""
    done: list[TrainingRound] = []
    while not stop.is_set() and (rounds is None or len(done) < rounds):
        tick = time.monotonic()
        try:
            result = train_once(settings, topic, window_s, model_dir, **options)
            log.info("training round: %s", result.model_dump_json())
            done.append(result)
        except Exception:  # noqa: BLE001 - a failed round must not stop the trainer; the served version stays
            log.exception("training round failed; retrying at the next tick")
            done.append(TrainingRound(started=utc_now().isoformat(), events=0, published=None,
                                      seconds=round(time.monotonic() - tick, 2), skipped="failed (see the log)"))
        if rounds is not None and len(done) >= rounds:
            break
        stop.wait(max(0.0, every_s - (time.monotonic() - tick)))
    return done
