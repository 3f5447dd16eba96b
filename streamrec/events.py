"""Event schemas: what the frontend emits, as JSON on the wire with a schema version.

Every event carries `event_id` (idempotency), `user_id` (the Kafka key, so one user's events stay in
order on one partition), `session_id` and `ts` (event time, UTC). `parse_event` is the only way bytes
become an event; it raises `EventDecodeError` naming what was wrong.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

SCHEMA_VERSION = 1
_ID = Annotated[str, Field(min_length=1, max_length=128)]


def new_event_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: _ID = Field(default_factory=new_event_id)
    user_id: _ID
    session_id: _ID
    ts: datetime = Field(default_factory=utc_now, description="Event time (UTC)")

    @field_validator("ts")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def ts_ms(self) -> int:
        return int(self.ts.timestamp() * 1000)


class PageView(_EventBase):
    """A page or item view; `item_id` is set when the page shows one product."""

    type: Literal["page_view"] = "page_view"
    item_id: _ID | None = None
    page: str | None = Field(None, max_length=2048)
    category: str | None = Field(None, max_length=256)
    brand: str | None = Field(None, max_length=256)
    price: float | None = Field(None, ge=0)


class SessionStart(_EventBase):
    type: Literal["session_start"] = "session_start"
    referrer: str | None = Field(None, max_length=2048)
    device: str | None = Field(None, max_length=64)


class SessionEnd(_EventBase):
    type: Literal["session_end"] = "session_end"


class TaskCompleted(_EventBase):
    """The user finished a task with a tool: the moment to suggest a tool not used yet."""

    type: Literal["task_completed"] = "task_completed"
    tool_id: _ID
    task: str | None = Field(None, max_length=256)
    category: str | None = Field(None, max_length=256)


class AddToCart(_EventBase):
    type: Literal["add_to_cart"] = "add_to_cart"
    item_id: _ID
    category: str | None = Field(None, max_length=256)
    brand: str | None = Field(None, max_length=256)
    price: float | None = Field(None, ge=0)
    quantity: int = Field(1, ge=1)


class Purchase(_EventBase):
    type: Literal["purchase"] = "purchase"
    item_id: _ID
    category: str | None = Field(None, max_length=256)
    brand: str | None = Field(None, max_length=256)
    price: float | None = Field(None, ge=0)
    quantity: int = Field(1, ge=1)


Event = Annotated[
    PageView | SessionStart | SessionEnd | TaskCompleted | AddToCart | Purchase,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "page_view",
    "session_start",
    "session_end",
    "task_completed",
    "add_to_cart",
    "purchase",
)
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class EventDecodeError(ValueError):
    """Bytes that are not a valid event; `reason` is short and names the offending field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "<event>"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def event_from_dict(payload: object) -> Event:
    """Validate an already-decoded JSON object (the collector's path)."""
    if not isinstance(payload, dict):
        raise EventDecodeError(f"event must be a JSON object, got {type(payload).__name__}")
    kind = payload.get("type")
    if kind not in EVENT_TYPES:
        raise EventDecodeError(f"type: unknown event type {kind!r}; expected one of {', '.join(EVENT_TYPES)}")
    try:
        return _EVENT_ADAPTER.validate_python(payload)
    except ValidationError as error:
        raise EventDecodeError(f"invalid {kind} event: {_describe(error)}") from error


def parse_event(raw: bytes | None, max_bytes: int | None = None) -> Event:
    """Decode one Kafka record value into an event, or raise `EventDecodeError` with the reason."""
    if raw is None:
        raise EventDecodeError("empty record value (tombstone)")
    if max_bytes is not None and len(raw) > max_bytes:
        raise EventDecodeError(f"payload too large: {len(raw)} bytes > limit {max_bytes}")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EventDecodeError(f"not JSON: {error}") from error
    return event_from_dict(payload)


def check_event_time(event: _EventBase, received_ms: int, max_future_skew_ms: int, min_ts_ms: int) -> None:
    """The event-time policy, the same at every entry (collector, SDK, worker): raise `EventDecodeError` for a
    time more than `max_future_skew_ms` ahead of `received_ms` (a trusted clock) or before `min_ts_ms`.

    Client clocks are not trusted: one event stamped 9999-12-31 must not wipe a user's cooldowns or TTLs.
    """
    ts_ms = event.ts_ms
    if ts_ms > received_ms + max_future_skew_ms:
        ahead_s = (ts_ms - received_ms) / 1000
        raise EventDecodeError(
            f"ts: {event.ts.isoformat()} is {ahead_s:.0f} s ahead of receipt time "
            f"(the limit is {max_future_skew_ms / 1000:.0f} s): the client's clock is wrong"
        )
    if ts_ms < min_ts_ms:
        raise EventDecodeError(f"ts: {event.ts.isoformat()} is before the earliest accepted event time")


def encode_event(event: _EventBase) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def event_key(event: _EventBase) -> bytes:
    """Kafka key: the user id, so one user's events keep their order on one partition."""
    return event.user_id.encode()


def is_item_event(event: _EventBase) -> bool:
    return getattr(event, "item_id", None) is not None
