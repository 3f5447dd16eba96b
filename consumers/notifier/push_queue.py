"""`PushQueue`: the consumer side of the per-user queues (dedupe, fatigue history, append, expiry sweep)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from consumers.notifier.fatigue import DAY_MS, PushHistory
from consumers.notifier.push_keys import PushKeys, lua_source
from consumers.notifier.settings import NotifierSettings


@dataclass(frozen=True)
class EnqueueResult:
    status: str  # "queued", "suppressed" (recorded as seen, not queued) or "duplicate"
    stream_id: str | None
    expired_by_age: int
    expired_by_overflow: int


class PushQueue:
    def __init__(self, client: redis.Redis, key_prefix: str, settings: NotifierSettings) -> None:
        self.redis = client
        self.keys = PushKeys(key_prefix)
        self.settings = settings
        self._enqueue = client.register_script(lua_source("enqueue"))
        self._expire = client.register_script(lua_source("expire_pending"))

    @property
    def queue_key_ttl_ms(self) -> int:
        # Longer than the pending TTL by more than a sweep interval, so the sweeper counts what expires
        # before Redis deletes the key.
        return (self.settings.pending_ttl_s + 3600) * 1000

    def history(self, user_id: str, members: Sequence[str], now_ms: int) -> PushHistory:
        """The user's pushes of the last day and when each of `members` was last pushed."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrangebyscore(self.keys.history(user_id), now_ms - DAY_MS, "+inf", withscores=True)
        if members:
            pipe.zmscore(self.keys.items(user_id), list(members))
        replies = pipe.execute()
        times = [int(score) for _, score in replies[0]]
        last = replies[1] if members else []
        return PushHistory(times, {m: int(s) for m, s in zip(members, last, strict=True) if s is not None})

    def record(
        self, user_id: str, notification_id: str, payload: bytes | None, members: Sequence[str], now_ms: int
    ) -> EnqueueResult:
        """Queue `payload` for the user (None: remember the id as handled without pushing)."""
        s = self.settings
        reply = self._enqueue(
            keys=self.keys.enqueue_keys(user_id),
            args=[user_id, now_ms, notification_id, payload or b"", s.pending_max, s.pending_ttl_s * 1000,
                  self.queue_key_ttl_ms, s.dedupe_ttl_s * 1000, s.repeat_window_s * 1000, *members],
        )
        status, stream_id, aged, overflow = reply
        stream_id = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        return EnqueueResult(status.decode() if isinstance(status, bytes) else status,
                             stream_id or None, int(aged), int(overflow))

    def sweep(self, now_ms: int, limit: int = 500) -> tuple[int, int]:
        """Count and trim the expired notifications of users whose oldest pending one is past its TTL."""
        due = self.redis.zrangebyscore(
            self.keys.pending(), "-inf", now_ms - self.settings.pending_ttl_s * 1000, start=0, num=limit
        )
        aged = overflow = 0
        for raw_user in due:
            user_id = raw_user.decode()
            a, o, _cursor = self._expire(
                keys=self.keys.cursor_keys(user_id),
                args=[user_id, now_ms, self.settings.pending_ttl_s * 1000, self.settings.pending_max],
            )
            aged += int(a)
            overflow += int(o)
        return aged, overflow
