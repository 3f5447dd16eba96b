"""Retraining inside a replay at a deployment's cadence: every `every_ms` of event time, the model is retrained on
the last `window_ms` of events before that moment (the warm-up's and the window's so far) and swapped in between
batches, as `streamrec trainer` and the worker's background reload do live. Offline evaluation then sees what a
continuously trained deployment would have sent, not a model frozen at the window's start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from model.interactions import events_to_frame
from model.recommender import Recommender
from streamrec.events import Event

log = logging.getLogger(__name__)

Retrain = Callable[[pd.DataFrame, Recommender], Recommender]  # (events of the window, running model) -> new model


@dataclass
class RetrainLog:
    at_ms: int
    training_events: int
    seconds: float


@dataclass
class Retraining:
    """Feeds on the window's batches; `due` says when a retrain is owed, `retrain` builds the model to swap in."""

    every_ms: int
    window_ms: int
    before: pd.DataFrame  # the warm-up's events (interactions frame)
    build: Retrain
    done: list[RetrainLog] = field(default_factory=list)
    _seen: list[Event] = field(default_factory=list)
    _next_ms: int | None = None

    def __post_init__(self) -> None:
        if self.every_ms <= 0 or self.window_ms <= 0:
            raise ValueError("retraining needs a positive cadence and window")

    def observe(self, batch: Sequence[Event]) -> None:
        """The batch just replayed (its events are in the past of any later retrain)."""
        if not batch:
            return
        if self._next_ms is None:
            self._next_ms = _ms(batch[0]) + self.every_ms
        self._seen.extend(batch)

    def due(self, now_ms: int) -> bool:
        return self._next_ms is not None and now_ms >= self._next_ms

    def retrain(self, now_ms: int, running: Recommender) -> Recommender:
        """The model trained on events in [now - window, now): only what a live trainer could have read by then."""
        started = time.monotonic()
        since = pd.Timestamp(now_ms - self.window_ms, unit="ms", tz="UTC")
        frame = pd.concat([self.before, events_to_frame(self._seen)], ignore_index=True) if self._seen else self.before
        frame = frame[(frame["ts"] >= since) & (frame["ts"] < pd.Timestamp(now_ms, unit="ms", tz="UTC"))]
        model = self.build(frame.reset_index(drop=True), running)
        self.done.append(RetrainLog(now_ms, len(frame), round(time.monotonic() - started, 3)))
        log.info("retrained at %s on %d events in %.1fs", pd.Timestamp(now_ms, unit="ms", tz="UTC"), len(frame),
                 self.done[-1].seconds)
        while self._next_ms is not None and self._next_ms <= now_ms:
            self._next_ms += self.every_ms
        self._seen = [e for e in self._seen if _ms(e) >= now_ms - self.window_ms]  # older ones never train again
        return model


def _ms(event: Event) -> int:
    return int(event.ts.timestamp() * 1000)
