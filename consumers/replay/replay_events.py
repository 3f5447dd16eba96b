"""What the replay runner needs of its input, whether a list in memory or a topic read once per model.

A first pass (`outline`) writes events.parquet, builds the training frame from the warm-up events and counts;
then every model gets its own `replay_pass`: the warm-up events, then the window, in event-time order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from consumers.replay.training_frame import TrainingFrameBuilder
from model.datasets.event_log import EventLogWriter
from streamrec.events import Event


@dataclass(frozen=True)
class ReplayOutline:
    """The counts and window bounds of a replay input, known after its first pass."""

    warmup_events: int
    window_events: int
    window_start: datetime | None
    window_end: datetime | None


class ReplayPass:
    """One read of the input: drain `warmup()` (events before the window) before reading `window()`."""

    def __init__(self, warmup: Iterator[Event], window: Iterator[Event], close: Callable[[], None] = lambda: None):
        self._warmup = warmup
        self._window = window
        self._close = close

    @classmethod
    def split(cls, events: Iterator[Event], since: datetime | None, close: Callable[[], None] = lambda: None,
              ) -> ReplayPass:
        """One event-time-ordered stream cut at `since` (None: it is all warm-up)."""
        first_of_window: list[Event] = []

        def warmup() -> Iterator[Event]:
            for event in events:
                if since is not None and event.ts >= since:
                    first_of_window.append(event)
                    return
                yield event

        def window() -> Iterator[Event]:
            yield from first_of_window
            yield from events

        return cls(warmup(), window(), close)

    def warmup(self) -> Iterator[Event]:
        return self._warmup

    def window(self) -> Iterator[Event]:
        return self._window

    def close(self) -> None:
        self._close()

    def __enter__(self) -> ReplayPass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplayEvents(Protocol):
    """Events to replay, readable once per model; `source` says where they came from (for the manifest)."""

    source: str

    def outline(self, events_path: Path | None = None, progress: bool = False) -> tuple[ReplayOutline, pd.DataFrame]:
        """First pass: write every event to `events_path` (if given); the counts and the warm-up training frame."""
        ...

    def replay_pass(self) -> ReplayPass:
        """A fresh read of the events from the start (close it when done, or use `with`)."""
        ...


class OutlineWriter:
    """What a first pass produces from the events in replay order: the event log, the training frame, counts."""

    def __init__(self, events_path: Path | None) -> None:
        self._log = EventLogWriter(events_path) if events_path is not None else None
        self._train = TrainingFrameBuilder()
        self._window = 0
        self._window_start: datetime | None = None
        self._window_end: datetime | None = None

    def log(self, event: Event) -> None:
        """Every event goes to events.parquet, warm-up or window."""
        if self._log is not None:
            self._log.write(event)

    def warmup(self, event: Event) -> None:
        self._train.add(event)

    def window(self, event: Event) -> None:
        self._window += 1
        if self._window_start is None:
            self._window_start = event.ts
        self._window_end = event.ts

    def finish(self) -> tuple[ReplayOutline, pd.DataFrame]:
        self.close()
        outline = ReplayOutline(self._train.rows, self._window, self._window_start, self._window_end)
        return outline, self._train.frame()

    def close(self) -> None:
        """Close the event log (also when the pass failed half way: the file is then incomplete)."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> OutlineWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
