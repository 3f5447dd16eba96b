"""Redis key layout and Lua scripts of the per-user push queues (the `{u:<user>}` hash tag groups a user's keys)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

LUA_DIR = Path(__file__).parent / "lua"


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

    def pending(self) -> str:
        """Users with undelivered notifications, scored by the time of the oldest (the sweeper reads it)."""
        return f"{self.prefix}push:pending"

    def enqueue_keys(self, user_id: str) -> list[str]:
        return [self.queue(user_id), self.cursor(user_id), self.history(user_id), self.items(user_id),
                self.seen(user_id), self.pending()]

    def cursor_keys(self, user_id: str) -> list[str]:
        return [self.queue(user_id), self.cursor(user_id), self.pending()]


@cache
def lua_source(name: str) -> str:
    """A script with the shared helpers prepended (Redis scripts cannot include one another)."""
    return (LUA_DIR / "common.lua").read_text() + "\n" + (LUA_DIR / f"{name}.lua").read_text()
