"""Emit at a target rate (events/s) or as fast as possible."""

from __future__ import annotations

import time


class Pacer:
    """Call `wait()` before each event; sleeps just enough to hold `rate` events/s on average."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.start = time.perf_counter()
        self.count = 0

    def wait(self) -> None:
        if self.interval:
            due = self.start + self.count * self.interval
            delay = due - time.perf_counter()
            if delay > 0.0005:
                time.sleep(delay)
        self.count += 1
