"""Redis key layout and Lua scripts of the per-user push queues and of the index of users with pending pushes.

A user's keys share the `{u:<user>}` hash tag, so a user script touches one Redis Cluster slot. The index is split
into `PENDING_SHARDS` sorted sets, each with its own tag (`{push-pending:<n>}`), so a cluster spreads it over its
nodes instead of making one hot key; it is written by separate calls after (or, for a new push, before) the user's.
"""

from __future__ import annotations

import zlib
from functools import cache
from pathlib import Path

LUA_DIR = Path(__file__).parent / "lua"
PENDING_SHARDS = 16  # fixed: a user moved to another shard would leave an entry no sweep reads


def pending_shard(user_id: str) -> int:
    """A stable shard of the user id (Python's hash() differs between processes)."""
    return zlib.crc32(user_id.encode()) % PENDING_SHARDS


class PushKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _user(self, user_id: str) -> str:
        return f"{self.prefix}push:{{u:{user_id}}}"

    def queue(self, user_id: str) -> str:
        """A stream of the notifications pushed to the user; entry ids are the SSE event ids."""
        return self._user(user_id) + ":queue"

    def cursor(self, user_id: str) -> str:
        """The id of the newest entry sent to any of the user's clients."""
        return self._user(user_id) + ":delivered"

    def history(self, user_id: str) -> str:
        return self._user(user_id) + ":history"

    def items(self, user_id: str) -> str:
        return self._user(user_id) + ":items"

    def seen(self, user_id: str) -> str:
        return self._user(user_id) + ":seen"

    def version(self, user_id: str) -> str:
        """The version of the user's last pending snapshot (the index keeps the newest it was given)."""
        return self._user(user_id) + ":version"

    def pending_users(self, shard: int) -> str:
        """One shard's users with undelivered notifications, scored by the ms of the oldest (the sweeper reads it)."""
        return f"{self.prefix}{{push-pending:{shard}}}:users"

    def pending_versions(self, shard: int) -> str:
        """The snapshot version behind each entry of `pending_users(shard)`."""
        return f"{self.prefix}{{push-pending:{shard}}}:versions"

    def legacy_pending(self) -> str:
        """The one-key index of earlier versions: the sweeper moves what it finds there into the shards."""
        return f"{self.prefix}push:pending"

    def enqueue_keys(self, user_id: str) -> list[str]:
        return [self.queue(user_id), self.cursor(user_id), self.history(user_id), self.items(user_id),
                self.seen(user_id), self.version(user_id)]

    def cursor_keys(self, user_id: str) -> list[str]:
        return [self.queue(user_id), self.cursor(user_id), self.version(user_id)]

    def index_keys(self, user_id: str) -> list[str]:
        shard = pending_shard(user_id)
        return [self.pending_users(shard), self.pending_versions(shard)]


@cache
def lua_source(name: str) -> str:
    """A script with the shared helpers prepended (Redis scripts cannot include one another)."""
    return (LUA_DIR / "common.lua").read_text() + "\n" + (LUA_DIR / f"{name}.lua").read_text()
