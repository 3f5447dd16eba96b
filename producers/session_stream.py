"""Real sessions at scale as a stream: the SR-GNN Diginetica and YooChoose-1/64 sessions as timed page views.

The files keep the real order of sessions (training sessions in time order, then the test days) but carry no
clock. One rule synthesises it, deterministic for a seed:

- session `i` of a block starts `i * start_gap_s` after the block starts, so sessions keep their file order and
  about `session length / start_gap_s` of them are open at once, interleaved as real traffic is;
- within a session each click follows the previous one after a gap drawn from a log-normal with median
  `median_gap_s` (sigma 1), clipped to [1 s, `max_gap_s`]: the shape of dwell times in click logs;
- the test block starts `block_gap_s` after the last training click, so every training event comes before
  `window_start` and every test event after it: a replay with `--since window_start` warms models up on the
  training sessions and judges them on the test sessions only.

Test sessions are rebuilt from the test prefixes: SR-GNN lists each test session's prefixes longest first
(`prefix[:-i] -> prefix[-i]`), so a session is its first row's prefix plus that row's target, and the next session
begins after the row whose prefix has length 1. Each session is its own user (the files have no users).

Events come out in event-time order from a generator that holds only the sessions open at the current time.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel
from tqdm import tqdm

from producers.event_producer import EventProducer
from producers.pacing import Pacer
from streamrec.events import PageView
from streamrec.settings import Settings


@dataclass(frozen=True)
class StreamClock:
    """The timestamp rule; the defaults give Diginetica about 2 weeks of traffic."""

    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    start_gap_s: float = 2.0
    median_gap_s: float = 30.0
    max_gap_s: float = 600.0
    block_gap_s: float = 3600.0
    seed: int = 7


def sessions_from_prefixes(test_prefixes: pd.DataFrame) -> list[np.ndarray]:
    """The test sessions behind SR-GNN's test prefixes (longest prefix first within each session)."""
    sessions: list[np.ndarray] = []
    opening = True
    for prefix, target in zip(test_prefixes["prefix"], test_prefixes["target"], strict=True):
        if opening:
            sessions.append(np.append(np.asarray(prefix, dtype=np.int64), int(target)))
        opening = len(prefix) == 1  # the shortest prefix closes its session
    return sessions


def sessions_in_file_order(sessions: pd.DataFrame) -> list[np.ndarray]:
    """The training sessions (`session`, `pos`, `item`) as item arrays, in file (time) order."""
    frame = sessions.sort_values(["session", "pos"], kind="stable")
    items = frame["item"].to_numpy(dtype=np.int64)
    ids = frame["session"].to_numpy()
    starts = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1, len(items)]
    order = pd.unique(sessions["session"].to_numpy())  # first appearance in the file
    by_id = {sid: items[a:b] for sid, a, b in zip(ids[starts[:-1]], starts[:-1], starts[1:], strict=True)}
    return [by_id[sid] for sid in order]


@dataclass(frozen=True)
class TimedBlock:
    """One block of sessions on the clock: where it starts, and its last click."""

    name: str
    sessions: Sequence[np.ndarray]
    start_ms: int
    end_ms: int


class SessionStream:
    """Training sessions, then test sessions, as `PageView` events in event-time order."""

    def __init__(self, dataset: str, train: Sequence[np.ndarray], test: Sequence[np.ndarray],
                 clock: StreamClock | None = None) -> None:
        self.dataset = dataset
        self.clock = clock or StreamClock()
        start_ms = int(self.clock.start.timestamp() * 1000)
        self._gaps = {name: self._session_gaps(sessions, salt)
                      for name, sessions, salt in (("train", train, 0), ("test", test, 1))}
        self.train = self._block("train", train, start_ms)
        self.test = self._block("test", test, self.train.end_ms + int(self.clock.block_gap_s * 1000))

    @property
    def window_start(self) -> datetime:
        """Where the test sessions begin: replay with `--since` this time."""
        return datetime.fromtimestamp(self.test.start_ms / 1000, UTC)

    def __len__(self) -> int:
        return sum(len(s) for s in self.train.sessions) + sum(len(s) for s in self.test.sessions)

    def _session_gaps(self, sessions: Sequence[np.ndarray], salt: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.clock.seed, salt])
        gaps = rng.lognormal(np.log(self.clock.median_gap_s), 1.0, size=sum(max(len(s) - 1, 0) for s in sessions))
        gaps_ms = (np.clip(gaps, 1.0, self.clock.max_gap_s) * 1000).astype(np.int64)
        bounds = np.cumsum([0] + [max(len(s) - 1, 0) for s in sessions])
        return [np.r_[0, np.cumsum(gaps_ms[a:b])] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _block(self, name: str, sessions: Sequence[np.ndarray], start_ms: int) -> TimedBlock:
        step_ms = int(self.clock.start_gap_s * 1000)
        offsets = self._gaps[name]
        end = max((start_ms + i * step_ms + int(o[-1]) for i, o in enumerate(offsets)), default=start_ms)
        return TimedBlock(name, sessions, start_ms, end)

    def events(self) -> Iterator[PageView]:
        """Every click as a page view, in timestamp order (ties: session order, then position)."""
        yield from self._block_events(self.train)
        yield from self._block_events(self.test)

    def _block_events(self, block: TimedBlock) -> Iterator[PageView]:
        step_ms = int(self.clock.start_gap_s * 1000)
        offsets = self._gaps[block.name]
        heap: list[tuple[int, int, int]] = []  # (ts_ms, session index, position): only the open sessions
        for index, items in enumerate(block.sessions):
            session_start = block.start_ms + index * step_ms
            while heap and heap[0][0] < session_start:
                yield self._event(block, *heapq.heappop(heap))
            for position, offset in enumerate(offsets[index][: len(items)]):
                heapq.heappush(heap, (session_start + int(offset), index, position))
        while heap:
            yield self._event(block, *heapq.heappop(heap))

    def _event(self, block: TimedBlock, ts_ms: int, index: int, position: int) -> PageView:
        session = f"{self.dataset}-{block.name}-{index}"
        return PageView(
            event_id=f"{session}-{position}", user_id=f"u-{session}", session_id=session,
            item_id=str(int(block.sessions[index][position])),
            ts=datetime.fromtimestamp(ts_ms / 1000, UTC),
        )


def srgnn_stream(dataset: str, clock: StreamClock | None = None, limit_sessions: int | None = None) -> SessionStream:
    """The stream of one SR-GNN benchmark from the shared data folder (`limit_sessions` per block for trials)."""
    from model.datasets.srgnn import dataset_dir

    path = dataset_dir(dataset)
    train = sessions_in_file_order(pd.read_parquet(path / "train_sessions.parquet"))
    test = sessions_from_prefixes(pd.read_parquet(path / "test_prefixes.parquet"))
    if limit_sessions is not None:
        train, test = train[-limit_sessions:], test[:limit_sessions]
    return SessionStream(dataset, train, test, clock)


class StreamedSessions(BaseModel):
    """What `stream-sessions` sent: counts, rate, and the `--since` that judges the test sessions only."""

    dataset: str
    topic: str
    train_sessions: int
    test_sessions: int
    events: int
    seconds: float
    events_per_s: float
    window_start: datetime
    first_event: datetime
    last_event: datetime
    lost: int


def stream_sessions(settings: Settings, stream: SessionStream, topic: str | None = None, rate: float | None = None,
                    progress: bool = True) -> StreamedSessions:
    """Produce the stream's events in event-time order (keyed by user = session); progress on stderr."""
    pacer = Pacer(rate)
    started = time.monotonic()
    with EventProducer(settings, topic=topic, client_id="streamrec-stream-sessions") as producer:
        for event in tqdm(stream.events(), total=len(stream), desc=f"stream {stream.dataset}", unit="ev",
                          disable=not progress, mininterval=1.0):
            pacer.wait()
            producer.emit(event)
        producer.flush()
        lost, sent = producer.lost, producer.emitted
    seconds = time.monotonic() - started
    return StreamedSessions(
        dataset=stream.dataset, topic=topic or settings.events_topic, train_sessions=len(stream.train.sessions),
        test_sessions=len(stream.test.sessions), events=sent, seconds=round(seconds, 2),
        events_per_s=round(sent / seconds, 1) if seconds else 0.0, window_start=stream.window_start,
        first_event=datetime.fromtimestamp(stream.train.start_ms / 1000, UTC),
        last_event=datetime.fromtimestamp(stream.test.end_ms / 1000, UTC), lost=lost,
    )
