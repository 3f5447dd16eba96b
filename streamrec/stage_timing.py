"""Where a batch's time goes: seconds per named stage of the worker's loop, summed over the batches.

Timed once per batch per stage (two `perf_counter` calls), never per event, so the hot path pays nothing that a
profile would see. The worker's pipeline makes one `StageTimes` active around a batch; code deeper down (the
hybrid's candidate sources, its features and ranker) adds its stages with `timed(name)`, which does nothing when
no timer is active (tests, offline evaluation).
"""

from __future__ import annotations

import json
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

# Upper bounds (seconds) of the latency histogram per stage: 0.5 ms (a Redis round trip) to 10 s (a stalled
# broker), so percentiles of a stage can be read off a scrape (Prometheus' `histogram_quantile`).
LATENCY_BUCKETS_S: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                                        2.5, 5.0, 10.0)


class StageTimes:
    """Summed wall seconds, this thread's CPU seconds, calls and a latency histogram per stage, in first-seen order.

    Wall minus CPU is what a stage waited (on Redis, the broker, or another thread holding the GIL).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu_seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.longest: dict[str, float] = defaultdict(float)  # the slowest single call (where a tail comes from)
        # Calls per latency bucket (not cumulative; the last slot counts calls above the largest bound).
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            took = time.perf_counter() - started
            self.cpu_seconds[name] += time.thread_time() - started_cpu
            self.seconds[name] += took
            self.calls[name] += 1
            if took > self.longest[name]:
                self.longest[name] = took
            self.buckets[name][bisect_left(LATENCY_BUCKETS_S, took)] += 1

    @contextmanager
    def active(self) -> Iterator[StageTimes]:
        """Make this timer the one `timed` adds to, for the code inside."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def summary(self, events: int) -> dict[str, dict[str, float]]:
        """Per stage: seconds, calls, ms per call (wall and CPU), the longest call (ms) and microseconds per event
        (`events` processed in all)."""
        return {name: {"seconds": seconds, "calls": self.calls[name],
                       "ms_per_call": 1000 * seconds / self.calls[name] if self.calls[name] else 0.0,
                       "cpu_ms_per_call": 1000 * self.cpu_seconds[name] / self.calls[name] if self.calls[name] else 0.0,
                       "longest_ms": 1000 * self.longest.get(name, 0.0),
                       "us_per_event": 1e6 * seconds / events if events else 0.0}
                for name, seconds in self.seconds.items()}

    def write(self, path: Path, events: int, served: str) -> None:
        """The summary, with the process's peak resident memory (the worker with its model loaded and serving)."""
        import resource

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"served": served, "events": events, "peak_rss_mb": round(peak_mb, 1),
                                    "stages": self.summary(events)}, indent=1))


_ACTIVE: ContextVar[StageTimes | None] = ContextVar("streamrec_stage_times", default=None)


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Add the code inside to stage `name` of the active timer, if there is one."""
    timer = _ACTIVE.get()
    if timer is None:
        yield
        return
    with timer.stage(name):
        yield
