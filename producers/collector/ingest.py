"""From a request body to validated events: one event, `{"events": [...]}` or a JSON array of events.

Validation is strict JSON, as the OpenAPI spec publishes it (a price sent as "12" is refused, not coerced,
NaN, Infinity and integers of more than 20 digits are refused naming the field), and all-or-nothing per
request: a batch with one bad event is rejected whole, with the index and field of the first bad event, so a
client never has to work out which part of a batch was taken.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from streamrec.events import (
    EVENT_TYPES,
    Event,
    EventDecodeError,
    UnacceptableValue,
    check_event_time,
    decode_json,
    event_from_dict,
)
from streamrec.settings import Settings


def _printable(text: str) -> str:
    """`text` as valid UTF-8: a key or value with a lone surrogate must not make the error response fail."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class IngestError(Exception):
    """Why a body was refused: `reason` is the metric label, `detail` the JSON the client gets back."""

    status: int
    reason: str
    message: str
    index: int | None = None
    field: str | None = None

    def detail(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.reason, "message": _printable(self.message)}
        if self.index is not None:
            body["index"] = self.index
        if self.field is not None:
            body["field"] = _printable(self.field)
        return body


@dataclass(frozen=True)
class EventTimePolicy:
    """Client clocks are not trusted: events too far ahead of the server's clock, or too old, are refused."""

    max_future_skew_ms: int
    min_ts_ms: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EventTimePolicy:
        return cls(int(settings.event_max_future_skew_s * 1000), settings.event_min_ts_ms)

    def check(self, event: Event, received_ms: int) -> None:
        check_event_time(event, received_ms, self.max_future_skew_ms, self.min_ts_ms)


_STRICT_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def _path(error: ValidationError) -> str | None:
    loc = [str(p) for p in error.errors()[0]["loc"]]
    # A discriminated union puts the event type first in the path: drop it, the client knows it.
    if loc and loc[0] in EVENT_TYPES:
        loc = loc[1:]
    return ".".join(loc) or None


def _validate(index: int, item: object) -> Event:
    try:
        event = event_from_dict(item)
    except EventDecodeError as error:
        raise IngestError(422, "invalid_event", f"event {index}: {error.reason}", index, error.field) from error
    try:
        _STRICT_EVENT.validate_json(json.dumps(item), strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        field = _path(error)
        raise IngestError(422, "invalid_event", f"event {index}: {field}: {first['msg']}", index, field) from error
    return event


def parse_events(
    body: bytes, max_events: int, time_policy: EventTimePolicy | None = None, received_ms: int | None = None
) -> list[Event]:
    """Decode and validate a request body; raise `IngestError` naming the bad event and field.

    With a `time_policy`, every event's time is checked against `received_ms` (default: the clock now).
    """
    try:
        payload = decode_json(body)
    except EventDecodeError as error:
        raise IngestError(400, "malformed_json", f"body is not acceptable JSON: {error.reason}") from error
    if isinstance(payload, UnacceptableValue):
        raise IngestError(400, "malformed_json", f"body is not acceptable JSON: {payload.reason}")
    if isinstance(payload, dict) and "events" in payload and "type" not in payload:
        if set(payload) != {"events"}:
            extra = sorted(set(payload) - {"events"})
            raise IngestError(422, "invalid_batch", f"unexpected batch keys: {', '.join(extra)}", field=extra[0])
        items = payload["events"]
        if not isinstance(items, list):
            raise IngestError(422, "invalid_batch", "events must be a JSON array", field="events")
    elif isinstance(payload, list):
        items = payload
    elif isinstance(payload, dict):
        items = [payload]
    else:
        raise IngestError(422, "invalid_batch", f"expected an event or a batch, got {type(payload).__name__}")
    if not items:
        raise IngestError(422, "empty_batch", "the batch holds no events", field="events")
    if len(items) > max_events:
        raise IngestError(422, "too_many_events", f"{len(items)} events in one request; the limit is {max_events}")
    events = [_validate(index, item) for index, item in enumerate(items)]
    if time_policy is not None:
        now_ms = int(time.time() * 1000) if received_ms is None else received_ms
        for index, event in enumerate(events):
            try:
                time_policy.check(event, now_ms)
            except EventDecodeError as error:
                raise IngestError(422, "invalid_event_time", f"event {index}: {error.reason}", index, "ts") from error
    return events
