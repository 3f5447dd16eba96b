"""Notice a Redis that lost its data and rebuild it from the log before any worker writes to it again.

Redis holds a marker key (the state epoch) that is written once the store is known to be whole. A server
that restarted without persistence, or a new one, has no marker: the first worker to see that takes a lock,
runs `restore_state` over the last `auto_restore_window_s` of the events and notifications topics, then writes
the marker; the other workers wait for the marker instead of writing into a half-rebuilt store.

Restoring reads past the batch a worker holds: harmless, because applying and observing are idempotent by
event id, and notifications already on the topic are recorded, so a trigger whose notification went out just
before Redis died is not notified again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis

from consumers.worker.state_restore import RestoreSummary, restore_state
from streamrec.session_store import RedisKeys
from streamrec.settings import Settings

log = logging.getLogger(__name__)

RestoreFn = Callable[[Settings, datetime], RestoreSummary]


def _restore(settings: Settings, since: datetime) -> RestoreSummary:
    return restore_state(settings, since, progress=False)


class StateRecovery:
    """`ensure()` returns once Redis holds a whole store: at once when the marker is there, else after a rebuild."""

    lock_ttl_s = 900  # a restorer that dies leaves the lock to expire; another worker then takes over

    def __init__(self, client: redis.Redis, settings: Settings, restore: RestoreFn = _restore) -> None:
        self.redis = client
        self.settings = settings
        self.restore = restore
        keys = RedisKeys(settings.key_prefix)
        self.epoch_key = keys.global_key("state-epoch")
        self.lock_key = keys.global_key("state-restore-lock")
        self.restores = 0

    def ensure(self, stop: threading.Event | None = None) -> bool:
        """True when this call rebuilt the store. Redis errors propagate (the caller waits the outage out)."""
        if not self.settings.auto_restore or self.redis.exists(self.epoch_key):
            return False
        token = uuid.uuid4().hex
        while not self.redis.set(self.lock_key, token, nx=True, ex=self.lock_ttl_s):
            if self.redis.exists(self.epoch_key):
                return False  # another worker finished the rebuild
            if stop is not None and stop.is_set():
                return False
            time.sleep(0.2)
        try:
            if self.redis.exists(self.epoch_key):
                return False
            since = datetime.now(UTC) - timedelta(seconds=self.settings.auto_restore_window_s)
            log.warning("Redis holds no state epoch (empty or new): rebuilding it from the log since %s",
                        since.isoformat())
            started = time.monotonic()
            summary = self.restore(self.settings, since)
            self.redis.set(self.epoch_key, datetime.now(UTC).isoformat())
            self.restores += 1
            log.warning("state rebuilt in %.1fs: %d events applied, %d notifications recorded",
                        time.monotonic() - started, summary.events_applied, summary.notifications_recorded)
            return True
        finally:
            if self.redis.get(self.lock_key) == token.encode():
                self.redis.delete(self.lock_key)
