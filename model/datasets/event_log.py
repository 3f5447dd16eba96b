"""The synthetic (or exported) event log: one row per event, the event's own fields as columns."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from streamrec.events import Event, event_from_dict

LOG_COLUMNS = [
    "type", "event_id", "user_id", "session_id", "ts", "item_id", "page", "category", "brand", "price",
    "quantity", "tool_id", "task", "referrer", "device",
]


def write_event_log(events: Iterable[Event], path: Path) -> int:
    """Write events as parquet or CSV (by suffix); returns the number of rows."""
    frame = pd.DataFrame([e.model_dump(exclude={"schema_version"}) for e in events])
    frame = frame.reindex(columns=LOG_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return len(frame)


def _clean(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def read_event_log(path: Path) -> Iterator[Event]:
    """Events of a log file in file order; a malformed row raises `EventDecodeError` naming the field."""
    frame = pd.read_csv(path, dtype=str) if path.suffix == ".csv" else pd.read_parquet(path)
    for record in frame.to_dict(orient="records"):
        payload = {k: _clean(v) for k, v in record.items()}
        payload = {k: v for k, v in payload.items() if v is not None}
        for numeric in ("price",):
            if numeric in payload:
                payload[numeric] = float(payload[numeric])
        if "quantity" in payload:
            payload["quantity"] = int(float(payload["quantity"]))
        yield event_from_dict(payload)
