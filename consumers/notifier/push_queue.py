"""`PushQueue`: the consumer side of the per-user queues (dedupe, fatigue history, append, expiry sweep)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from consumers.notifier.fatigue import DAY_MS, PushHistory
from consumers.notifier.pending_index import PendingIndex, PendingSnapshot
from consumers.notifier.push_keys import PushKeys, lua_source
from consumers.notifier.settings import NotifierSettings
from streamrec.redis_connection import LuaScript, RedisClient, ScriptCall, ScriptRunner

ENQUEUE = LuaScript(lua_source("enqueue"))
EXPIRE_PENDING = LuaScript(lua_source("expire_pending"))


@dataclass(frozen=True)
class EnqueueResult:
    status: str  # "queued", "suppressed" (recorded as seen, not queued) or "duplicate"
    stream_id: str | None
    expired_by_age: int
    expired_by_overflow: int
    pending: PendingSnapshot  # for the index, written by `settle`


class PushQueue:
    """Works on one Redis server and on a Redis Cluster alike: each script takes one user's keys only."""

    def __init__(self, client: RedisClient, key_prefix: str, settings: NotifierSettings) -> None:
        self.redis = client
        self.keys = PushKeys(key_prefix)
        self.settings = settings
        self.runner = ScriptRunner(client)
        self.index = PendingIndex(client, self.keys, self.runner)

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
        """Queue `payload` for the user (None: remember the id as handled without pushing), index included:
        the entry reserved, the user's script, the entry settled (a batch does these steps once for all)."""
        self.reserve([user_id])
        result = self.enqueue(user_id, notification_id, payload, members, now_ms)
        self.settle([result.pending])
        return result

    def reserve(self, user_ids: Iterable[str]) -> None:
        """The index entries of users about to be pushed to, written before their scripts run."""
        self.index.reserve(user_ids)

    def enqueue(
        self, user_id: str, notification_id: str, payload: bytes | None, members: Sequence[str], now_ms: int
    ) -> EnqueueResult:
        """The user's script alone; its `pending` snapshot is for `settle`, after `reserve`."""
        s = self.settings
        status, stream_id, aged, overflow, version, pending = self.runner.run([ScriptCall(
            ENQUEUE, self.keys.enqueue_keys(user_id),
            [now_ms, notification_id, payload or b"", s.pending_max, s.pending_ttl_s * 1000, self.queue_key_ttl_ms,
             s.dedupe_ttl_s * 1000, s.repeat_window_s * 1000, *members],
        )])[0]
        stream_id = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        return EnqueueResult(status.decode() if isinstance(status, bytes) else status, stream_id or None,
                             int(aged), int(overflow), PendingSnapshot.from_reply(user_id, version, pending))

    def settle(self, snapshots: Iterable[PendingSnapshot]) -> None:
        """Write the newest of each user's snapshots into the index."""
        newest: dict[str, PendingSnapshot] = {}
        for snapshot in snapshots:
            held = newest.get(snapshot.user_id)
            if held is None or int(snapshot.version) >= int(held.version):
                newest[snapshot.user_id] = snapshot
        self.index.settle(list(newest.values()))

    def sweep(self, now_ms: int, limit: int = 500) -> tuple[int, int]:
        """Count and trim the expired notifications of users whose oldest pending one is past its TTL.

        Every shard of the index is read (up to `limit` users each), the users' scripts run as one batch and the
        index is settled as one: a round trip per node for each of the three steps.
        """
        ttl_ms = self.settings.pending_ttl_s * 1000
        due, legacy = self.index.due(now_ms - ttl_ms, limit)
        users = list(dict.fromkeys(due + legacy))
        if not users:
            return 0, 0
        replies = self.runner.run([
            ScriptCall(EXPIRE_PENDING, self.keys.cursor_keys(user_id),
                       [now_ms, ttl_ms, self.settings.pending_max, self.queue_key_ttl_ms])
            for user_id in users
        ])
        self.index.settle([PendingSnapshot.from_reply(user_id, version, pending)
                           for user_id, (_a, _o, _cursor, version, pending) in zip(users, replies, strict=True)])
        self.index.forget_legacy(legacy)
        return sum(int(reply[0]) for reply in replies), sum(int(reply[1]) for reply in replies)
