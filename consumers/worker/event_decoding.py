"""Bytes of the events topic to an event, under the event-time policy: the worker and restore-state agree."""

from __future__ import annotations

from streamrec.events import Event, check_event_time, parse_event
from streamrec.settings import Settings


def decode_event(raw: bytes | None, settings: Settings, received_ms: int) -> Event:
    """Parse one record value and apply the event-time policy as of `received_ms`; `EventDecodeError` if refused."""
    event = parse_event(raw, settings.max_event_bytes)
    check_event_time(
        event,
        received_ms=received_ms,
        max_future_skew_ms=int(settings.event_max_future_skew_s * 1000),
        min_ts_ms=settings.event_min_ts_ms,
    )
    return event
