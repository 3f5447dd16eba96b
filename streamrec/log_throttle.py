"""Keep a client library's retry chatter from flooding the logs during an outage.

kafka-python logs every failed connection attempt at ERROR (dozens a second while a broker is down). The
filter lets each distinct message of the throttled loggers through once per `interval_s`, and says how
many like it were held back; our own OUTAGE/RECOVERED lines are never throttled.
"""

from __future__ import annotations

import logging
import time


class RepeatThrottle(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...] = ("kafka",), interval_s: float = 10.0) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self._last.get(key, -self.interval_s) < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} like it in the last {self.interval_s:.0f}s not shown)"
        return True


def throttle_library_logs(interval_s: float = 10.0) -> None:
    """Install the throttle on every handler of the root logger (call after logging is configured)."""
    throttle = RepeatThrottle(interval_s=interval_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(throttle)
