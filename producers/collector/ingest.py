"""From a request body to validated events: one event, `{"events": [...]}` or a JSON array of events.

Validation is strict JSON, as the OpenAPI spec publishes it (a price sent as "12" is refused, not coerced),
and all-or-nothing per request: a batch with one bad event is rejected whole, with the index and
field of the first bad event, so a client never has to work out which part of a batch was taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from streamrec.events import EVENT_TYPES, Event, EventDecodeError, event_from_dict


@dataclass(frozen=True)
class IngestError(Exception):
    """Why a body was refused: `reason` is the metric label, `detail` the JSON the client gets back."""

    status: int
    reason: str
    message: str
    index: int | None = None
    field: str | None = None

    def detail(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.reason, "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        if self.field is not None:
            body["field"] = self.field
        return body


_STRICT_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def _path(error: ValidationError) -> str | None:
    loc = [str(p) for p in error.errors()[0]["loc"]]
    # A discriminated union puts the event type first in the path: drop it, the client knows it.
    if len(loc) > 1 and loc[0] in EVENT_TYPES:
        loc = loc[1:]
    return ".".join(loc) or None


def _field_of(error: EventDecodeError) -> str | None:
    """The dotted path of the first invalid field (the schema's own error names it)."""
    cause = error.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        return _path(cause)
    if error.reason.startswith("type:"):
        return "type"
    return None


def _validate(index: int, item: object) -> Event:
    try:
        event = event_from_dict(item)
    except EventDecodeError as error:
        message = f"event {index}: {error.reason}"
        raise IngestError(422, "invalid_event", message, index, _field_of(error)) from error
    try:
        _STRICT_EVENT.validate_json(json.dumps(item), strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        field = _path(error)
        raise IngestError(422, "invalid_event", f"event {index}: {field}: {first['msg']}", index, field) from error
    return event


def parse_events(body: bytes, max_events: int) -> list[Event]:
    """Decode and validate a request body; raise `IngestError` naming the bad event and field."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IngestError(400, "malformed_json", f"body is not JSON: {error}") from error
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
    return [_validate(index, item) for index, item in enumerate(items)]
