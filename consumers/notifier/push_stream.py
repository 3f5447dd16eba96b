"""`PushStream`: the reading side of a user's queue, as Server-Sent Events (resume with Last-Event-ID).

Each client blocks on its user's Redis stream (XREAD BLOCK), so a client connected to any notifier instance
sees what any instance queued. Heartbeat comments keep proxies from closing idle streams.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.push_keys import PushKeys, lua_source
from consumers.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
RECONNECT_MS = 2000


def sse_event(event_id: str, data: str, event: str = "notification") -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"id: {event_id}\nevent: {event}\n{lines}\n"


class PushStream:
    def __init__(
        self, client: aioredis.Redis, key_prefix: str, settings: NotifierSettings, metrics: NotifierMetrics,
        stopping: threading.Event,
    ) -> None:
        self.redis = client
        self.keys = PushKeys(key_prefix)
        self.settings = settings
        self.metrics = metrics
        self.stopping = stopping
        self._advance = client.register_script(lua_source("advance_cursor"))
        self._expire = client.register_script(lua_source("expire_pending"))

    @property
    def key_ttl_ms(self) -> int:
        return (self.settings.pending_ttl_s + 3600) * 1000

    async def start_after(self, user_id: str, last_event_id: str | None) -> str:
        """Where this client resumes: after its Last-Event-ID, else after what any client of the user got.

        Expired notifications are counted and trimmed first, so a client never gets one past its TTL.
        """
        aged, overflow, cursor = await self._expire(
            keys=self.keys.cursor_keys(user_id),
            args=[user_id, int(time.time() * 1000), self.settings.pending_ttl_s * 1000, self.settings.pending_max],
        )
        self.metrics.count_expired(int(aged), int(overflow))
        if last_event_id:
            return last_event_id
        return cursor.decode() if isinstance(cursor, bytes) else str(cursor)

    async def events(self, user_id: str, after: str) -> AsyncIterator[str]:
        """SSE text for every notification after `after`, then for each new one, until the client leaves."""
        queue = self.keys.queue(user_id)
        block_ms = int(self.settings.heartbeat_s * 1000)
        yield f"retry: {RECONNECT_MS}\n: connected\n\n"
        cursor = after
        self.metrics.connected.inc()
        try:
            while not self.stopping.is_set():
                reply = await self.redis.xread({queue: cursor}, count=100, block=block_ms)
                if not reply:
                    yield ": keep-alive\n\n"
                    continue
                for entry_id, fields in reply[0][1]:
                    entry = entry_id.decode()
                    yield sse_event(entry, fields[b"n"].decode())
                    self.metrics.delivered.inc()
                    cursor = entry
                await self._advance(keys=self.keys.cursor_keys(user_id), args=[user_id, cursor, self.key_ttl_ms])
        except RedisError as error:
            # End this stream; the browser reconnects with Last-Event-ID and resumes where it stopped.
            log.warning("stream of user %s closed on a Redis error: %r", user_id, error)
        finally:
            self.metrics.connected.dec()
