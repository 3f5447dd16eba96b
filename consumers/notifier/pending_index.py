"""`PendingIndex`: the users with undelivered pushes, in `PENDING_SHARDS` sorted sets (the sweeper's work list).

No script takes a user's keys and the index together (a Redis Cluster cannot run one across slots), so an operation
is split: the user's script changes the queue and returns a snapshot (a version and the ms of the oldest pending
push), then `settle` writes the snapshot into the user's shard, where an older snapshot never overwrites a newer.
The one direction that could lose work, pending pushes without an entry, is closed twice: a new push reserves
its user's entry before its script runs (due at once, so the next sweep looks if the batch never settles), and a
batch that failed before it settled is redelivered, and its duplicates report the snapshot again. An entry without
pending pushes is harmless: the sweeper's snapshot removes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from consumers.notifier.push_keys import PENDING_SHARDS, PushKeys, lua_source
from streamrec.redis_connection import LuaScript, RedisClient, ScriptCall, ScriptRunner

INDEX_PENDING = LuaScript(lua_source("index_pending"))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class PendingSnapshot:
    """What a user script saw: the index entry the user should have (none when `pending_ms` is empty)."""

    user_id: str
    version: str
    pending_ms: str

    @classmethod
    def from_reply(cls, user_id: str, version: object, pending_ms: object) -> PendingSnapshot:
        return cls(user_id, _text(version), _text(pending_ms))

    def index_call(self, keys: PushKeys) -> ScriptCall:
        return ScriptCall(INDEX_PENDING, keys.index_keys(self.user_id), [self.user_id, self.version, self.pending_ms])


class PendingIndex:
    """The index's writes and reads on a one-server or cluster client, one round trip per node per batch."""

    def __init__(self, client: RedisClient, keys: PushKeys, runner: ScriptRunner) -> None:
        self.redis = client
        self.keys = keys
        self.runner = runner

    def reserve(self, user_ids: Iterable[str]) -> None:
        """Index first: an entry for each user, due at once (score 0; LT keeps it where it is already lower)."""
        users = list(dict.fromkeys(user_ids))
        if not users:
            return
        pipe = self.redis.pipeline(transaction=False)
        for user_id in users:
            pipe.zadd(self.keys.index_keys(user_id)[0], {user_id: 0}, lt=True)
        pipe.execute()

    def settle(self, snapshots: Sequence[PendingSnapshot]) -> None:
        """Write each snapshot into its user's shard (a shard holding a newer one keeps it)."""
        if snapshots:
            self.runner.run([snapshot.index_call(self.keys) for snapshot in snapshots])

    def due(self, cutoff_ms: int, limit: int) -> tuple[list[str], list[str]]:
        """Users whose oldest pending push is at or before `cutoff_ms`, up to `limit` per shard, every shard read;
        and up to `limit` users of the earlier one-key index, due or not (the sweep moves them into the shards)."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(PENDING_SHARDS):
            pipe.zrangebyscore(self.keys.pending_users(shard), "-inf", cutoff_ms, start=0, num=limit)
        pipe.zrange(self.keys.legacy_pending(), 0, limit - 1)
        *shards, legacy = pipe.execute()
        return [_text(user) for users in shards for user in users], [_text(user) for user in legacy]

    def forget_legacy(self, user_ids: Sequence[str]) -> None:
        if user_ids:
            self.redis.zrem(self.keys.legacy_pending(), *user_ids)
