"""Event schemas: what the frontend emits, as JSON on the wire with a schema version.

Every event carries `event_id` (idempotency), `user_id` (the Kafka key, so one user's events stay in
order on one partition), `session_id` and `ts` (event time, UTC). `parse_event` is the only way bytes
become an event; it raises `EventDecodeError` naming what was wrong.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

SCHEMA_VERSION = 1


class ItemKind(StrEnum):
    """What a recommendation is about: a shop product or a tool of the product suite (a str: "product", "tool")."""

    PRODUCT = "product"
    TOOL = "tool"


PRODUCT = ItemKind.PRODUCT
TOOL = ItemKind.TOOL
ITEM_KINDS: tuple[ItemKind, ...] = tuple(ItemKind)
# Ids end up in Redis keys, logs and push payloads: no control characters (C0, DEL, C1) at all.
ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
# Free text may hold a tab, nothing else from the control ranges (no NUL, no CR/LF to forge log lines).
TEXT_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f]*$"
MAX_PRICE = 1e9
MAX_QUANTITY = 1_000_000
MAX_INT_DIGITS = 20  # a JSON integer longer than this is refused before Python converts it


def _integral_float_to_int(value: object) -> object:
    """835.0 is an integer in JSON Schema (and in JavaScript): take it as 835, even under strict validation."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


_ID = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
_Text64 = Annotated[str, Field(max_length=64, pattern=TEXT_PATTERN)]
_Text256 = Annotated[str, Field(max_length=256, pattern=TEXT_PATTERN)]
_Text2048 = Annotated[str, Field(max_length=2048, pattern=TEXT_PATTERN)]
_Price = Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)]
_Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY), BeforeValidator(_integral_float_to_int)]


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
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
            raise ValueError("in UTC this time is outside years 1 to 9999") from None

    @property
    def ts_ms(self) -> int:
        return int(self.ts.timestamp() * 1000)


class PageView(_EventBase):
    """A page or item view; `item_id` is set when the page shows one product."""

    type: Literal["page_view"] = "page_view"
    item_id: _ID | None = None
    page: _Text2048 | None = None
    category: _Text256 | None = None
    brand: _Text256 | None = None
    price: _Price | None = None


class SessionStart(_EventBase):
    type: Literal["session_start"] = "session_start"
    referrer: _Text2048 | None = None
    device: _Text64 | None = None


class SessionEnd(_EventBase):
    type: Literal["session_end"] = "session_end"


class TaskCompleted(_EventBase):
    """The user finished a task with a tool: the moment to suggest a tool not used yet."""

    type: Literal["task_completed"] = "task_completed"
    tool_id: _ID
    task: _Text256 | None = None
    category: _Text256 | None = None


class AddToCart(_EventBase):
    type: Literal["add_to_cart"] = "add_to_cart"
    item_id: _ID
    category: _Text256 | None = None
    brand: _Text256 | None = None
    price: _Price | None = None
    quantity: _Quantity = 1


class Purchase(_EventBase):
    type: Literal["purchase"] = "purchase"
    item_id: _ID
    category: _Text256 | None = None
    brand: _Text256 | None = None
    price: _Price | None = None
    quantity: _Quantity = 1


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
    """Bytes that are not a valid event; `reason` is short and names the offending field, `field` is its path."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class UnacceptableValue:
    """What the decoder puts where the JSON holds NaN, Infinity or a huge integer: no field accepts it, so
    validation names the field, and the reason comes from here."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<{self.reason}>"


def _parse_int(text: str) -> int | UnacceptableValue:
    # Python would spend quadratic time on a 4300-digit integer and then refuse a longer one with ValueError.
    if len(text) > MAX_INT_DIGITS + 1 or (len(text) > MAX_INT_DIGITS and text[0] != "-"):
        return UnacceptableValue(f"number too large ({len(text.lstrip('-'))} digits; at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_constant(text: str) -> UnacceptableValue:
    return UnacceptableValue(f"{text} is not JSON (strict JSON has no NaN or Infinity)")


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_constant=_parse_constant)


def decode_json(raw: bytes | str) -> object:
    """Strict JSON: the value, or `EventDecodeError` for text that is not JSON or nests too deep.

    NaN, Infinity and integers of more than `MAX_INT_DIGITS` digits decode to a marker that no event field
    accepts, so `event_from_dict` refuses them naming the field.
    """
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, bytes) else raw
        return _DECODER.decode(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EventDecodeError(f"not JSON: {error}") from error
    except RecursionError:
        # Events are flat; the decoder's own recursion guard stops at ~1000 levels, whatever the input's depth.
        raise EventDecodeError("not an event: JSON nesting too deep") from None


def _where(item: dict) -> str:
    loc = item["loc"]
    # A discriminated union puts the event type first in the path: drop it, the type is named already.
    if loc and loc[0] in EVENT_TYPES:
        loc = loc[1:]
    return ".".join(str(p) for p in loc)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        value = item.get("input")
        message = value.reason if isinstance(value, UnacceptableValue) else item["msg"]
        parts.append(f"{_where(item) or '<event>'}: {message}")
    return "; ".join(parts)


def event_from_dict(payload: object) -> Event:
    """Validate an already-decoded JSON object (the collector's path)."""
    if isinstance(payload, UnacceptableValue):
        raise EventDecodeError(payload.reason)
    if not isinstance(payload, dict):
        raise EventDecodeError(f"event must be a JSON object, got {type(payload).__name__}")
    kind = payload.get("type")
    if kind not in EVENT_TYPES:
        expected = ", ".join(EVENT_TYPES)
        if "type" not in payload:
            raise EventDecodeError(f"type: missing; expected one of {expected}", field="type")
        if not isinstance(kind, str):  # never repr it: a deeply nested list would blow the stack a second time
            raise EventDecodeError(f"type: must be a string, one of {expected}", field="type")
        raise EventDecodeError(f"type: unknown event type {kind[:40]!r}; expected one of {expected}", field="type")
    try:
        return _EVENT_ADAPTER.validate_python(payload)
    except ValidationError as error:
        first = error.errors()[0]
        raise EventDecodeError(f"invalid {kind} event: {_describe(error)}", field=_where(first) or None) from error


def parse_event(raw: bytes | None, max_bytes: int | None = None) -> Event:
    """Decode one Kafka record value into an event, or raise `EventDecodeError` with the reason."""
    if raw is None:
        raise EventDecodeError("empty record value (tombstone)")
    if max_bytes is not None and len(raw) > max_bytes:
        raise EventDecodeError(f"payload too large: {len(raw)} bytes > limit {max_bytes}")
    return event_from_dict(decode_json(raw))


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
            f"(the limit is {max_future_skew_ms / 1000:.0f} s): the client's clock is wrong",
            field="ts",
        )
    if ts_ms < min_ts_ms:
        raise EventDecodeError(f"ts: {event.ts.isoformat()} is before the earliest accepted event time", field="ts")


def encode_event(event: _EventBase) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def event_key(event: _EventBase) -> bytes:
    """Kafka key: the user id, so one user's events keep their order on one partition."""
    return event.user_id.encode()


def is_item_event(event: _EventBase) -> bool:
    return getattr(event, "item_id", None) is not None
