"""Events to replay held in memory: a dataset file, or a topic read whole, in event-time order.

A replay of a topic streams it instead (`topic_input.TopicReplayInput`); both meet the runner as `ReplayEvents`.

The time window is applied to each event's own `ts`, never through the broker's offset-for-time lookups
(unreliable on some Kafka-compatible brokers, and record timestamps need not be event times).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from consumers.replay.replay_events import OutlineWriter, ReplayOutline, ReplayPass
from streamrec.events import Event
from streamrec.settings import Settings

log = logging.getLogger(__name__)

FILE_FORMATS = ("auto", "event-log", "asos", "yoochoose", "rees46")


@dataclass
class ReplayInput:
    """Events before the window (warm-up and training data) and the window itself, each in event-time order, in
    memory (a file's events, or a test's); the runner reads it as `ReplayEvents` like a streamed topic."""

    warmup: list[Event]
    window: list[Event]
    source: str

    @property
    def window_start(self) -> datetime | None:
        return self.window[0].ts if self.window else None

    @property
    def window_end(self) -> datetime | None:
        return self.window[-1].ts if self.window else None

    def outline(self, events_path: Path | None = None, progress: bool = False) -> tuple[ReplayOutline, pd.DataFrame]:
        """events.parquet, counts and training frame, built as a streamed input builds them (same files)."""
        with OutlineWriter(events_path) as outline:
            for event in self.warmup:
                outline.log(event)
                outline.warmup(event)
            for event in self.window:
                outline.log(event)
                outline.window(event)
            return outline.finish()

    def replay_pass(self) -> ReplayPass:
        return ReplayPass(iter(self.warmup), iter(self.window))


def in_event_time_order(events: Iterable[Event]) -> list[Event]:
    """Sorted by event time; equal times keep their arrival order (a stable sort)."""
    return sorted(events, key=lambda e: e.ts)


def split_at(
    events: list[Event], source: str, since: datetime | None, until: datetime | None, warmup_share: float = 0.5
) -> ReplayInput:
    """Warm-up = events before `since` (or the first `warmup_share` of events); window = [since, until)."""
    ordered = in_event_time_order(events)
    if until is not None:
        ordered = [e for e in ordered if e.ts < until]
    if since is None:
        cut = int(len(ordered) * warmup_share)
        since = ordered[cut].ts if cut < len(ordered) else None
    if since is None:
        return ReplayInput(ordered, [], source)
    return ReplayInput([e for e in ordered if e.ts < since], [e for e in ordered if e.ts >= since], source)


def read_topic_events(
    settings: Settings, topic: str | None = None, until: datetime | None = None, idle_s: float = 3.0,
    max_events: int | None = None, progress: bool = True, stall_s: float = 30.0,
) -> list[Event]:
    """Every decodable event of `topic` from the beginning (records after `until` dropped by event time), held
    in a list: for callers that want them all (training from a topic). A replay streams them instead.

    The rules of the read (when a partition is done, how long a slow one is waited for) are
    `TopicEventStream`'s; the events come in its merge order, event-time order when each partition is.
    """
    from consumers.replay.topic_stream import TopicEventStream

    topic = topic or settings.events_topic
    with TopicEventStream.open(settings, topic, until=until, idle_s=idle_s, stall_s=stall_s) as stream:
        events = tqdm(stream, desc=f"read {topic}", unit="ev", disable=not progress)
        return list(islice(events, max_events))


def detect_file_format(path: Path) -> str:
    if path.is_dir() and path.name.startswith("yoochoose"):
        return "yoochoose"
    if path.is_dir() and path.name.startswith("rees46"):
        return "rees46"
    if path.suffix == ".txt":
        return "yoochoose"
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if "dummyUserId" in names:
            return "asos"
        if "user_session" in names:
            return "rees46"
    return "event-log"


def read_file_events(path: Path, fmt: str = "auto") -> tuple[list[Event], datetime | None]:
    """The file's events and, where the dataset defines one, where its test window starts.

    A yoochoose session-rec folder gives train_full + test (the window starts at the test split).
    """
    fmt = detect_file_format(path) if fmt == "auto" else fmt
    if fmt == "yoochoose":
        import pandas as pd

        from model.datasets import yoochoose

        if path.is_dir():
            train = yoochoose.load_clicks(path / yoochoose.SPLITS["train_full"])
            test = yoochoose.load_clicks(path / yoochoose.SPLITS["test"])
            frame = pd.concat([train, test], ignore_index=True)
            return list(yoochoose.click_events(frame)), test["ts"].min().to_pydatetime(warn=False)
        return list(yoochoose.click_events(yoochoose.load_clicks(path))), None
    if fmt == "rees46":
        from model.datasets import rees46

        return rees46.load_events(path / "events.parquet" if path.is_dir() else path), None
    if fmt == "asos":
        from model.datasets import asos

        return list(asos.purchase_events(path)), None
    if fmt == "event-log":
        from model.datasets.event_log import read_event_log

        return list(read_event_log(path)), None
    raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FILE_FORMATS)}")
