"""An events topic as replay input, streamed: the topic is the storage, read afresh for every model.

Memory stays at the training frame (columnar, the offline fits need it anyway) plus the merge's small
buffers, not one Event object per record. Every pass reads the same records: the first one fixes where each
partition stops (its end offset then, or where it stalled) and every later pass stops there too; a pass that
finds other counts (records deleted by retention in between) fails rather than compare models on different data.

The passes are exact only when each partition is in event-time order (our producers write them so); when the
first pass finds an event behind an earlier one, the input falls back to holding the topic sorted in memory,
as replays did before, so the order is still exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from consumers.replay.replay_events import OutlineWriter, ReplayOutline, ReplayPass
from consumers.replay.sources import ReplayInput, split_at
from consumers.replay.topic_stream import TopicEventStream
from streamrec.events import Event, utc_now
from streamrec.settings import Settings

log = logging.getLogger(__name__)


class TopicChanged(RuntimeError):
    """A later pass over the topic did not find the events the first pass counted."""


class TopicReplayInput:
    """`topic`'s events with ts < `until`, split at `since` (or, without it, after `warmup_share` of them)."""

    def __init__(
        self, settings: Settings, topic: str, since: datetime | None = None, until: datetime | None = None,
        warmup_share: float = 0.5, source: str | None = None, idle_s: float = 3.0, stall_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.source = source or f"topic {topic}"
        self.since = since  # without one given, the first pass finds it
        self._asked_since = since
        self.until = until
        self.warmup_share = warmup_share
        self._stop_at = min(until, utc_now()) if until is not None else utc_now()  # the same for every pass
        self._options = {"idle_s": idle_s, "stall_s": stall_s}
        self._ends: dict[int, int] | None = None
        self._total: int | None = None
        self._in_memory: ReplayInput | None = None
        self._ordered = True

    def _read(self, desc: str, progress: bool, total: int | None = None) -> Iterator[Event]:
        """One pass; the first one fixes each partition's stopping point for all later ones."""
        with TopicEventStream.open(self.settings, self.topic, until=self.until, stop_at=self._stop_at,
                                   ends=self._ends, **self._options) as stream:
            yield from tqdm(stream, desc=desc, unit="ev", total=total, disable=not progress)
            if self._ends is None:
                self._ends = stream.reached()
            self._ordered = stream.out_of_order == 0

    def outline(self, events_path: Path | None = None, progress: bool = False) -> tuple[ReplayOutline, pd.DataFrame]:
        """The first pass (two without `since`: the cut after `warmup_share` of the events needs their count)."""
        if self._in_memory is not None:
            return self._in_memory.outline(events_path, progress)
        cut = None
        if self.since is None:
            self._total = sum(1 for _ in self._read(f"count {self.topic}", progress))
            cut = int(self._total * self.warmup_share)
        with OutlineWriter(events_path) as outline:
            count = self._first_pass(outline, cut, progress)
            if not self._ordered:
                outline.close()
                return self._fall_back_to_memory().outline(events_path, progress)
            self._check(count)
            return outline.finish()

    def _first_pass(self, outline: OutlineWriter, cut: int | None, progress: bool) -> int:
        """Feed `outline`; with `cut`, the window starts at the time of the cut-th event (as `split_at` cuts).

        Events before the cut that share that time belong to the window, so the newest run of equal times is
        held back from the training frame until a later time shows it is warm-up.
        """
        held: list[Event] = []
        count = 0
        for count, event in enumerate(self._read(f"read {self.topic}", progress, self._total), start=1):
            outline.log(event)
            if cut is not None and self.since is None:
                if count - 1 == cut:
                    self.since = event.ts
                    for earlier in held:
                        (outline.window if earlier.ts >= self.since else outline.warmup)(earlier)
                    held = []
                else:
                    if held and held[-1].ts != event.ts:
                        for earlier in held:
                            outline.warmup(earlier)
                        held = []
                    held.append(event)
                    continue
            (outline.warmup if self.since is None or event.ts < self.since else outline.window)(event)
        for earlier in held:  # the cut fell past the end: everything is warm-up
            outline.warmup(earlier)
        return count

    def _fall_back_to_memory(self) -> ReplayInput:
        log.warning("topic %s has events behind earlier ones in their partition: replaying it from memory, "
                    "sorted by event time", self.topic)
        events = sorted(self._read(f"read {self.topic}", False), key=lambda e: e.ts)
        self._in_memory = split_at(events, self.source, self._asked_since, self.until, self.warmup_share)
        self.since = self._asked_since if self._asked_since is not None else self._in_memory.window_start
        return self._in_memory

    def replay_pass(self) -> ReplayPass:
        """A fresh read of the topic (after `outline`), warm-up events first, then the window."""
        if self._in_memory is not None:
            return self._in_memory.replay_pass()
        if self._ends is None:
            raise RuntimeError("outline() reads the topic first")
        events = self._read(f"read {self.topic}", False)
        counted = self._counting(events)
        return ReplayPass.split(counted, self.since, close=counted.close)

    def _counting(self, events: Iterator[Event]) -> Iterator[Event]:
        count = 0
        try:
            for event in events:
                count += 1
                yield event
        finally:
            events.close()
        self._check(count)

    def _check(self, count: int) -> None:
        if self._total is None:
            self._total = count
        elif count != self._total:
            raise TopicChanged(f"topic {self.topic} gave {count} events where an earlier pass gave {self._total}")
