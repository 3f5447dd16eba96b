"""Redis-backed session context: what each user is doing now, what they used or bought, what they were sent.

One Lua script applies an event atomically and idempotently (by event id, within a per-user window),
and a whole batch of events goes to Redis in one pipelined round trip (per node of a Redis Cluster: every key of
one event is the user's, under one `{u:<user>}` hash tag, so each script call stays in one slot).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from itertools import chain

from streamrec.events import PRODUCT, TOOL, AddToCart, Event, PageView, Purchase, TaskCompleted
from streamrec.notifications import Notification
from streamrec.redis_connection import LuaScript, RawPipeline, RedisClient, ScriptCall, ScriptRunner
from streamrec.settings import Settings

_APPLY_EVENT = LuaScript(files("streamrec").joinpath("lua/apply_event.lua").read_text())
_MAX_EXACT_MS = 2**53  # event times beyond this are not exact in Lua's doubles


class UnappliableEvent(ValueError):
    """An event the session script cannot apply whole (a non-finite price, a bad time): refused before any write."""




@dataclass(frozen=True)
class SessionContext:
    """A user's session as seen right after one event (the ranker's session features come from here)."""

    user_id: str
    session_id: str
    started_ms: int = 0
    last_ms: int = 0
    page_views: int = 0
    events: int = 0
    price_mean: float | None = None
    recent_items: tuple[str, ...] = ()  # this session, newest first
    categories: dict[str, int] = field(default_factory=dict)
    user_recent_items: tuple[str, ...] = ()  # across sessions, newest first
    consumed_recent: tuple[str, ...] = ()  # "kind:id" used or bought, newest first (capped)
    page_view_ordinal: int = 0  # for a page view: its position in the session (1-based)
    duplicate: bool = False  # the event had been applied before (a redelivery): its lists are as of itself

    @property
    def session_seconds(self) -> float:
        return max(0, self.last_ms - self.started_ms) / 1000.0

    def consumed_ids(self, kind: str) -> list[str]:
        """The ids of `kind` in `consumed_recent` ("kind:id" members), newest first."""
        prefix = kind + ":"
        return [m[len(prefix):] for m in self.consumed_recent if m.startswith(prefix)]


@dataclass(frozen=True)
class UserFilters:
    """What must not be recommended to a user now, and whether a trigger was already notified."""

    consumed: frozenset[str]  # "kind:id" members: tools used, products bought
    recently_notified: frozenset[str]  # "kind:id" members notified within the cooldown
    trigger_already_notified: bool

    def excluded(self, kind: str) -> set[str]:
        prefix = kind + ":"
        return {m[len(prefix) :] for m in self.consumed | self.recently_notified if m.startswith(prefix)}


class RedisKeys:
    """Key layout under one prefix; `{user}` hash tags keep a user's keys in one cluster slot."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, user_id: str, session_id: str) -> str:
        return f"{self.prefix}{{u:{user_id}}}:s:{session_id}"

    def session_items(self, user_id: str, session_id: str) -> str:
        return self.session(user_id, session_id) + ":items"

    def session_categories(self, user_id: str, session_id: str) -> str:
        return self.session(user_id, session_id) + ":cats"

    def session_pv_ordinals(self, user_id: str, session_id: str) -> str:
        return self.session(user_id, session_id) + ":pv"

    def user(self, user_id: str) -> str:
        return f"{self.prefix}{{u:{user_id}}}"

    def user_recent(self, user_id: str) -> str:
        return self.user(user_id) + ":recent"

    def consumed(self, user_id: str) -> str:
        return self.user(user_id) + ":consumed"

    def seen_events(self, user_id: str) -> str:
        return self.user(user_id) + ":seen"

    def notified_items(self, user_id: str) -> str:
        return self.user(user_id) + ":notified"

    def notified_events(self, user_id: str) -> str:
        return self.user(user_id) + ":notified_events"

    def global_key(self, name: str) -> str:
        return f"{self.prefix}g:{name}"


@dataclass(frozen=True)
class FilterQuery:
    """One trigger to look up in `filters_batch`: whose filters, which trigger event, as of which event time."""

    user_id: str
    trigger_event_id: str
    ts_ms: int

    @classmethod
    def for_event(cls, event: Event) -> FilterQuery:
        """The query for an event that triggered (its user, its id, its time)."""
        return cls(user_id=event.user_id, trigger_event_id=event.event_id, ts_ms=event.ts_ms)


@dataclass(frozen=True)
class SentNotification:
    """What `record_notifications` keeps of a sent notification: user, trigger event, "kind:id" items, ts ms."""

    user_id: str
    trigger_event_id: str
    members: tuple[str, ...]  # "kind:id" of the items offered
    ts_ms: int  # the trigger's event time (cooldowns run in event time)

    @classmethod
    def of(cls, notification: Notification) -> SentNotification:
        """The history row of one notification (the worker's confirm and restore-state both record these)."""
        return cls(
            user_id=notification.user_id,
            trigger_event_id=notification.trigger_event_id,
            members=tuple(f"{i.kind}:{i.item_id}" for i in notification.items),
            ts_ms=int(notification.trigger_ts.timestamp() * 1000),
        )

    @property
    def query(self) -> FilterQuery:
        """The filter lookup that says whether this notification's trigger is recorded already."""
        return FilterQuery(user_id=self.user_id, trigger_event_id=self.trigger_event_id, ts_ms=self.ts_ms)


def consumed_member(event: Event) -> str:
    """The "kind:id" an event marks as used or bought, or "" when it marks nothing."""
    if isinstance(event, Purchase):
        return f"{PRODUCT}:{event.item_id}"
    if isinstance(event, TaskCompleted):
        return f"{TOOL}:{event.tool_id}"
    return ""


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode_all(values: Sequence[bytes | str]) -> tuple[str, ...]:
    """Every value as text: `bytes.decode` mapped in C (the apply script returns some 40 values per event)."""
    try:
        return tuple(map(bytes.decode, values))
    except TypeError:  # a client that decodes replies itself
        return tuple(map(_decode, values))


def _pairs(flat: Sequence[bytes]) -> dict[str, str]:
    text = _decode_all(flat)
    return dict(zip(text[::2], text[1::2], strict=True))


class SessionStore:
    """Reads and writes session context, consumption history and notification history in Redis."""

    dedupe_window = 512  # event ids remembered per user for idempotency

    def __init__(self, client: RedisClient, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self.keys = RedisKeys(settings.key_prefix)
        self._scripts = ScriptRunner(client)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionStore:
        return cls(settings.redis_client(), settings)

    # --- writes -------------------------------------------------------------------------------
    def apply_batch(self, events: Sequence[Event]) -> list[SessionContext]:
        """Apply events in order in one pipelined round trip (per node); return each event's resulting context.

        Every event is checked before anything is sent (`UnappliableEvent`), so a bad one cannot leave its
        batch-mates applied and marked seen while the batch as a whole failed.
        """
        if not events:
            return []
        calls = [ScriptCall(_APPLY_EVENT, *self._script_call(event)) for event in events]
        results = self._scripts.run(calls)
        return [self._context(event, result) for event, result in zip(events, results, strict=True)]

    def apply(self, event: Event) -> SessionContext:
        return self.apply_batch([event])[0]

    def _apply(self, keys: Sequence[str], args: Sequence[str]) -> list:
        """One apply_event.lua call with these KEYS and ARGV as given (tests check the script's own refusals)."""
        return self._scripts.run([ScriptCall(_APPLY_EVENT, keys, args)])[0]

    def check_appliable(self, event: Event) -> None:
        """Raise `UnappliableEvent` for an event the apply script would refuse (callers that skip, not fail)."""
        self._script_call(event)

    def _script_call(self, event: Event) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of apply_event.lua for one event, every number an integer string (or a finite price)."""
        k, s = self.keys, self.settings
        for name in ("event_id", "user_id", "session_id"):
            value = getattr(event, name, None)
            if not isinstance(value, str) or not value:
                raise UnappliableEvent(f"event {event.event_id!r}: {name} must be a non-empty string")
        ts_ms = event.ts_ms
        if not isinstance(ts_ms, int) or not 0 <= ts_ms < _MAX_EXACT_MS:
            raise UnappliableEvent(f"event {event.event_id}: ts must be integer ms since epoch, got {ts_ms!r}")
        price = getattr(event, "price", None) if isinstance(event, PageView | AddToCart | Purchase) else None
        if price is not None and (
            isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price < 0
        ):
            raise UnappliableEvent(f"event {event.event_id}: price must be a finite number >= 0, got {price!r}")
        keys = [
            k.session(event.user_id, event.session_id),
            k.session_items(event.user_id, event.session_id),
            k.session_categories(event.user_id, event.session_id),
            k.user(event.user_id),
            k.user_recent(event.user_id),
            k.consumed(event.user_id),
            k.seen_events(event.user_id),
            k.session_pv_ordinals(event.user_id, event.session_id),
        ]
        args = [
            event.event_id,
            event.type,
            str(ts_ms),
            getattr(event, "item_id", None) or "",
            getattr(event, "category", None) or "",
            consumed_member(event),
            event.user_id,
            event.session_id,
            str(int(s.session_ttl_s)),
            str(int(s.user_history_ttl_s)),
            str(int(s.recent_items_cap)),
            str(int(self.dedupe_window)),
            "" if price is None else repr(float(price)),
            str(int(s.context_items)),
        ]
        return keys, args

    @staticmethod
    def _context(event: Event, result: list) -> SessionContext:
        duplicate, session_flat, items, cats_flat, user_recent, consumed_recent, ordinal = result
        return _session_context(
            event.user_id, event.session_id, _pairs(session_flat), items, _pairs(cats_flat), user_recent,
            default_ms=event.ts_ms,
            consumed_recent=tuple(_decode(m) for m in consumed_recent),
            page_view_ordinal=int(ordinal),
            duplicate=bool(duplicate),
        )

    def record_notifications(self, sent: Iterable[SentNotification]) -> None:
        """Remember what was sent (items for the cooldown, trigger ids for redelivery) once it was flushed.

        Plain one-key commands of many users: on a cluster redis-py's pipeline splits them by node.
        """
        pipe = RawPipeline(self.redis)
        ttl = self.settings.user_history_ttl_s
        # Prune by the wall clock at the latest: one event stamped in the future must not end every cooldown.
        now_ms = int(time.time() * 1000)
        for row in sent:
            ts_ms = int(row.ts_ms)
            items_key = self.keys.notified_items(row.user_id)
            events_key = self.keys.notified_events(row.user_id)
            if row.members:
                # GT: a notification recorded late (a restore, a redone batch) never moves a cooldown back.
                pipe.execute_command("ZADD", items_key, "GT", *chain.from_iterable((ts_ms, m) for m in row.members))
            pipe.execute_command("ZREMRANGEBYSCORE", items_key, "-inf",
                                 str(min(ts_ms, now_ms) - self.settings.notify_cooldown_s * 1000))
            pipe.execute_command("EXPIRE", items_key, ttl)
            pipe.execute_command("ZADD", events_key, ts_ms, row.trigger_event_id)
            pipe.execute_command("ZREMRANGEBYRANK", events_key, 0, -(self.dedupe_window + 1))
            pipe.execute_command("EXPIRE", events_key, ttl)
        pipe.execute()

    # --- reads --------------------------------------------------------------------------------
    def filters_batch(self, queries: Sequence[FilterQuery]) -> list[UserFilters]:
        """Per query: consumed and notified as of its event time, and was its trigger notified already?"""
        if not queries:
            return []
        pipe = RawPipeline(self.redis)
        cooldown_ms = self.settings.notify_cooldown_s * 1000
        for query in queries:
            # As of the trigger's event time: later events of the same batch must not leak in.
            pipe.execute_command("ZRANGEBYSCORE", self.keys.consumed(query.user_id), "-inf", query.ts_ms)
            pipe.execute_command("ZRANGEBYSCORE", self.keys.notified_items(query.user_id), query.ts_ms - cooldown_ms,
                                 query.ts_ms)
            pipe.execute_command("ZSCORE", self.keys.notified_events(query.user_id), query.trigger_event_id)
        raw = pipe.execute()
        return [
            UserFilters(
                consumed=frozenset(_decode(m) for m in raw[i]),
                recently_notified=frozenset(_decode(m) for m in raw[i + 1]),
                trigger_already_notified=raw[i + 2] is not None,
            )
            for i in range(0, len(raw), 3)
        ]

    def consumed(self, user_id: str, kind: str | None = None) -> set[str]:
        members = {_decode(m) for m in self.redis.zrange(self.keys.consumed(user_id), 0, -1)}
        if kind is None:
            return members
        prefix = kind + ":"
        return {m[len(prefix) :] for m in members if m.startswith(prefix)}

    def latest_context(self, user_id: str) -> SessionContext | None:
        """The context of the user's most recent session, or None for an unknown user."""
        user = {_decode(k): _decode(v) for k, v in self.redis.hgetall(self.keys.user(user_id)).items()}
        if not user:
            return None
        session_id = user.get("last_session", "")
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.session(user_id, session_id))
        pipe.lrange(self.keys.session_items(user_id, session_id), 0, self.settings.context_items - 1)
        pipe.hgetall(self.keys.session_categories(user_id, session_id))
        pipe.lrange(self.keys.user_recent(user_id), 0, self.settings.context_items - 1)
        session_raw, items, cats, recent = pipe.execute()
        return _session_context(
            user_id, session_id, {_decode(k): _decode(v) for k, v in session_raw.items()}, items,
            {_decode(c): _decode(n) for c, n in cats.items()}, recent, default_ms=int(user.get("last_ms", 0)),
        )

    def known_users(self, limit: int = 100_000) -> list[str]:
        """User ids with history under this prefix (for promotion targeting), at most `limit`."""
        users: list[str] = []
        pattern = f"{self.settings.key_prefix}{{u:*}}"
        for key in self.redis.scan_iter(match=pattern, count=1000):
            name = _decode(key)
            users.append(name[len(self.settings.key_prefix) + 3 : -1])
            if len(users) >= limit:
                break
        return users

    def delete_namespace(self) -> int:
        """Delete every key under this store's prefix (tests and replays clean up with this)."""
        deleted = 0
        for batch in _chunks(self.redis.scan_iter(match=f"{self.settings.key_prefix}*", count=1000), 500):
            deleted += self.redis.delete(*batch)
        return deleted


def _session_context(
    user_id: str,
    session_id: str,
    session: dict[str, str],
    items: Sequence[bytes],
    categories: dict[str, str],
    user_recent: Sequence[bytes],
    default_ms: int,
    **flags: object,
) -> SessionContext:
    """A context from a session hash and its lists as Redis returns them (one decoding for every reader)."""
    priced = int(session.get("priced_views", 0))
    return SessionContext(
        user_id=user_id,
        session_id=session_id,
        started_ms=int(session.get("started_ms", default_ms)),
        last_ms=int(session.get("last_ms", default_ms)),
        page_views=int(session.get("page_views", 0)),
        events=int(session.get("events", 0)),
        price_mean=float(session["price_sum"]) / priced if priced else None,
        recent_items=_decode_all(items),
        categories={c: int(n) for c, n in categories.items()},
        user_recent_items=_decode_all(user_recent),
        **flags,
    )


def _chunks(iterable: Iterable[bytes], size: int) -> Iterable[list[bytes]]:
    batch: list[bytes] = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
