"""Notice a Redis that lost its data and rebuild it from the log before any worker writes to it again.

Redis holds a marker key (the state epoch) that is written once the store is known to be whole. A server
that restarted without persistence, or a new one, has no marker: the first worker to see that takes a lock,
runs `restore_state` over the last `auto_restore_window_s` of the events and notifications topics, then writes
the marker; the other workers wait for the marker instead of writing into a half-rebuilt store.

On a Redis Cluster each master holds a marker of its own (`{state-epoch:<i>}`, the first i whose slot that master
serves), so one master that restarted empty is noticed too: the rebuild replays the log for everyone, which the
masters that kept their data take as duplicates. After a resharding a master may serve none of the markers it
had: that reads as missing, and costs one needless (idempotent) rebuild.

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
from streamrec.redis_connection import is_cluster
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

    def epoch_keys(self) -> list[str]:
        """The markers that say the store is whole: one key on one server, one per master on a cluster."""
        if not is_cluster(self.redis):
            return [self.epoch_key]
        prefix = self.settings.key_prefix
        wanted = {node.name for node in self.redis.get_primaries()}
        found: dict[str, str] = {}
        for i in range(16384 * 4):  # a few dozen tries per master in practice
            key = f"{prefix}{{state-epoch:{i}}}"
            owner = self.redis.get_node_from_key(key).name
            if owner in wanted and owner not in found:
                found[owner] = key
                if len(found) == len(wanted):
                    break
        return sorted(found.values())

    def _whole(self) -> bool:
        pipe = self.redis.pipeline(transaction=False)
        for key in self.epoch_keys():
            pipe.exists(key)
        return all(pipe.execute())

    def ensure(self, stop: threading.Event | None = None) -> bool:
        """True when this call rebuilt the store. Redis errors propagate (the caller waits the outage out)."""
        if not self.settings.auto_restore or self._whole():
            return False
        token = uuid.uuid4().hex
        while not self.redis.set(self.lock_key, token, nx=True, ex=self.lock_ttl_s):
            if self._whole():
                return False  # another worker finished the rebuild
            if stop is not None and stop.is_set():
                return False
            time.sleep(0.2)
        try:
            if self._whole():
                return False
            since = datetime.now(UTC) - timedelta(seconds=self.settings.auto_restore_window_s)
            log.warning("Redis holds no state epoch (empty or new): rebuilding it from the log since %s",
                        since.isoformat())
            started = time.monotonic()
            summary = self.restore(self.settings, since)
            pipe = self.redis.pipeline(transaction=False)
            for key in self.epoch_keys():
                pipe.set(key, datetime.now(UTC).isoformat())
            pipe.execute()
            self.restores += 1
            log.warning("state rebuilt in %.1fs: %d events applied, %d notifications recorded",
                        time.monotonic() - started, summary.events_applied, summary.notifications_recorded)
            return True
        finally:
            if self.redis.get(self.lock_key) == token.encode():
                self.redis.delete(self.lock_key)
