"""The synthetic (or exported) event log: one row per event, the event's own fields as columns."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from streamrec.events import Event, event_from_dict

LOG_COLUMNS = [
    "type", "event_id", "user_id", "session_id", "ts", "item_id", "page", "category", "brand", "price",
    "quantity", "tool_id", "task", "referrer", "device",
]


# Fixed column types for a log written in chunks: a chunk's own inference would differ between chunks (a chunk
# without purchases has no quantity at all), and one parquet file needs one schema.
LOG_SCHEMA = pa.schema(
    [(name, pa.large_string()) for name in LOG_COLUMNS[:4]]
    + [("ts", pa.timestamp("us", tz="UTC"))]
    + [(name, pa.large_string()) for name in ("item_id", "page", "category", "brand")]
    + [("price", pa.float64()), ("quantity", pa.float64())]
    + [(name, pa.large_string()) for name in ("tool_id", "task", "referrer", "device")]
)


def _log_frame(events: Iterable[Event]) -> pd.DataFrame:
    """The log's rows: each event's own fields as columns."""
    frame = pd.DataFrame([e.model_dump(exclude={"schema_version"}) for e in events])
    frame = frame.reindex(columns=LOG_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def write_event_log(events: Iterable[Event], path: Path) -> int:
    """Write events as parquet or CSV (by suffix); returns the number of rows."""
    frame = _log_frame(events)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return len(frame)


class EventLogWriter:
    """A parquet event log written a chunk at a time, so a log of any length never sits in memory whole.

    Reads back like `write_event_log`'s parquet (same columns and values); the column types are fixed by
    `LOG_SCHEMA` instead of inferred from the data.
    """

    def __init__(self, path: Path, chunk: int = 20_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.chunk = chunk
        self.rows = 0
        self._pending: list[Event] = []
        self._writer = pq.ParquetWriter(path, LOG_SCHEMA)

    def write(self, event: Event) -> None:
        self._pending.append(event)
        if len(self._pending) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_pandas(_log_frame(self._pending), schema=LOG_SCHEMA, preserve_index=False)
        self._writer.write_table(table.replace_schema_metadata(None))  # per-chunk pandas metadata would differ
        self.rows += len(self._pending)
        self._pending = []

    def close(self) -> int:
        """Write what is pending and close the file; returns the number of rows."""
        self._flush()
        self._writer.close()
        return self.rows

    def __enter__(self) -> EventLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
