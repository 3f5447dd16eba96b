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

import anyio

from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.pending_index import PendingSnapshot
from consumers.notifier.push_keys import PushKeys, lua_source
from consumers.notifier.redis_async import STORE_ERRORS, AsyncRedisClient
from consumers.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
# Redis stream ids are "ms-seq", two unsigned 64-bit integers; `\d` would also match Arabic-Indic digits.
STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})", re.ASCII)
MAX_ID_PART = 2**64 - 1
RECONNECT_MS = 2000


def parse_stream_id(text: str) -> str:
    """A Last-Event-ID as a canonical Redis stream id, or ValueError (answered 400): what XREAD accepts."""
    match = STREAM_ID.fullmatch(text)
    if match is None:
        raise ValueError("Last-Event-ID is not a notification id")
    ms, seq = (int(part) for part in match.groups())
    if ms > MAX_ID_PART or seq > MAX_ID_PART:
        raise ValueError("Last-Event-ID is beyond the 64-bit range of notification ids")
    return f"{ms}-{seq}"


def sse_event(event_id: str | None, data: str, event: str = "notification") -> str:
    """One SSE event; without an id the browser keeps the Last-Event-ID it has (control events have none)."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n{lines}\n"


# Sent as the stream ends at its token's expiry: the page fetches a fresh token and opens a new stream
# (EventSource's own reconnect would present the expired token and get a 401).
TOKEN_EXPIRED = sse_event(None, '{"error": "token expired"}', "token-expired")
# A 200 answer for EventSource while Redis is down: any other status would stop it from reconnecting.
STORE_UNAVAILABLE = f"retry: {RECONNECT_MS}\n" + sse_event(None, '{"error": "notification store unavailable"}',
                                                           "unavailable")


class PushStream:
    def __init__(
        self, client: AsyncRedisClient, key_prefix: str, settings: NotifierSettings, metrics: NotifierMetrics,
        stopping: threading.Event,
    ) -> None:
        self.redis = client
        self.keys = PushKeys(key_prefix)
        self.settings = settings
        self.metrics = metrics
        self.stopping = stopping
        self._advance = client.register_script(lua_source("advance_cursor"))
        self._expire = client.register_script(lua_source("expire_pending"))
        # redis-py's async cluster client runs these too: EVALSHA goes to the keys' node, NOSCRIPT loads the
        # script on every master and calls again.
        self._index = client.register_script(lua_source("index_pending"))

    @property
    def key_ttl_ms(self) -> int:
        return (self.settings.pending_ttl_s + 3600) * 1000

    async def start_after(self, user_id: str, last_event_id: str | None) -> str:
        """Where this client resumes: after its Last-Event-ID, else after what any client of the user got.

        Expired notifications are counted and trimmed first, so a client never gets one past its TTL.
        """
        aged, overflow, cursor, version, pending = await self._expire(
            keys=self.keys.cursor_keys(user_id),
            args=[int(time.time() * 1000), self.settings.pending_ttl_s * 1000, self.settings.pending_max,
                  self.key_ttl_ms],
        )
        self.metrics.count_expired(int(aged), int(overflow))
        await self._settle(PendingSnapshot.from_reply(user_id, version, pending))
        if last_event_id:
            return last_event_id
        return cursor.decode() if isinstance(cursor, bytes) else str(cursor)

    async def _settle(self, snapshot: PendingSnapshot) -> None:
        """The user's entry in the pending index, after the user's script (a second call: another slot)."""
        await self._index(keys=self.keys.index_keys(snapshot.user_id),
                          args=[snapshot.user_id, snapshot.version, snapshot.pending_ms])

    async def backlog(self, user_id: str, after: str) -> list:
        """The first read, before the response starts, so a Redis error gets a clear answer, not a closed stream."""
        reply = await self.redis.xread({self.keys.queue(user_id): after}, count=100)
        return reply[0][1] if reply else []

    async def events(
        self, user_id: str, after: str, expires_at: float | None = None, backlog: list | None = None
    ) -> AsyncIterator[str]:
        """SSE text for every notification after `after`, then for each new one, until the client leaves.

        The stream ends at `expires_at` (its token's expiry, seconds since the epoch), and on a Redis error:
        the browser then reconnects with Last-Event-ID and resumes where it stopped.
        """
        queue = self.keys.queue(user_id)
        heartbeat_ms = int(self.settings.heartbeat_s * 1000)
        yield f"retry: {RECONNECT_MS}\n: connected\n\n"
        cursor = recorded = after
        entries = backlog or []
        self.metrics.connected.inc()
        try:
            while not self.stopping.is_set():
                if entries:
                    for entry_id, fields in entries:
                        entry = entry_id.decode()
                        yield sse_event(entry, fields[b"n"].decode())
                        self.metrics.delivered.inc()
                        cursor = entry  # the server came back for the next chunk: this one was sent
                    await self._record_delivered(user_id, cursor)
                    recorded = cursor
                block_ms = heartbeat_ms
                if expires_at is not None:
                    left_ms = int((expires_at - time.time()) * 1000)
                    if left_ms <= 0:
                        yield TOKEN_EXPIRED
                        return
                    block_ms = max(1, min(block_ms, left_ms))  # BLOCK 0 would mean forever
                reply = await self.redis.xread({queue: cursor}, count=100, block=block_ms)
                entries = reply[0][1] if reply else []
                if not entries:
                    yield ": keep-alive\n\n"
        except STORE_ERRORS as error:
            # End this stream; the browser reconnects with Last-Event-ID and resumes where it stopped.
            log.warning("stream of user %s closed on a Redis error: %r", user_id, error)
        finally:
            self.metrics.connected.dec()
            if cursor != recorded:
                # The client left right after its last event was sent, while the delivery was being recorded
                # (the server cancels the stream on disconnect): record it anyway, shielded from that cancel, or
                # a fresh client of the user (no Last-Event-ID) gets it again.
                with anyio.CancelScope(shield=True):
                    try:
                        await self._record_delivered(user_id, cursor)
                    except STORE_ERRORS as error:
                        log.warning("recording user %s's last delivery failed: %r", user_id, error)

    async def _record_delivered(self, user_id: str, cursor: str) -> None:
        """Move the user's cursor (what any client of the user got) to `cursor`, and settle the pending index."""
        _cursor, version, pending = await self._advance(
            keys=self.keys.cursor_keys(user_id), args=[cursor, self.key_ttl_ms, int(time.time() * 1000)])
        await self._settle(PendingSnapshot.from_reply(user_id, version, pending))
