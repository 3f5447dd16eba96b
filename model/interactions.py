"""The interactions frame every `fit` takes: one row per event, a fixed set of columns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from streamrec.events import PRODUCT, TOOL, Event

COLUMNS = ["event_id", "user_id", "session_id", "ts", "event_type", "kind", "item_id", "category", "brand", "price"]


def events_to_frame(events: Iterable[Event]) -> pd.DataFrame:
    """Flatten events into the interactions frame (`kind` is "tool" for tasks, else "product")."""
    rows = []
    for e in events:
        item = getattr(e, "item_id", None) or getattr(e, "tool_id", None)
        rows.append(
            {
                "event_id": e.event_id,
                "user_id": e.user_id,
                "session_id": e.session_id,
                "ts": e.ts,
                "event_type": e.type,
                "kind": TOOL if e.type == "task_completed" else PRODUCT,
                "item_id": item,
                "category": getattr(e, "category", None),
                "brand": getattr(e, "brand", None),
                "price": getattr(e, "price", None),
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def frame_to_events(frame: pd.DataFrame) -> list[Event]:
    """The interactions frame back as events, in time order (stable), with their ids, categories and prices: what a
    model trained from a frame replays through the worker's pipeline."""
    from streamrec.events import AddToCart, PageView, Purchase, SessionEnd, SessionStart, TaskCompleted

    def text(value: object) -> str | None:
        return value if isinstance(value, str) and value else None

    def number(value: object) -> float | None:
        return float(value) if isinstance(value, int | float) and value == value and value > 0 else None

    events: list[Event] = []
    for row in frame.sort_values("ts", kind="mergesort").itertuples(index=False):
        base = {"event_id": str(row.event_id), "user_id": str(row.user_id), "session_id": str(row.session_id),
                "ts": row.ts.to_pydatetime()}
        item = None if row.item_id is None or row.item_id != row.item_id else str(row.item_id)  # NaN: no item
        goods = {"category": text(row.category), "brand": text(row.brand), "price": number(row.price)}
        if row.event_type == "page_view":
            events.append(PageView(**base, item_id=item, **goods))
        elif row.event_type == "add_to_cart" and item:
            events.append(AddToCart(**base, item_id=item, **goods))
        elif row.event_type == "purchase" and item:
            events.append(Purchase(**base, item_id=item, **goods))
        elif row.event_type == "task_completed" and item:
            events.append(TaskCompleted(**base, tool_id=item, category=text(row.category)))
        elif row.event_type == "session_start":
            events.append(SessionStart(**base))
        elif row.event_type == "session_end":
            events.append(SessionEnd(**base))
    return events


def utc_ms(ts: pd.Series) -> np.ndarray:
    """Milliseconds since the epoch for a UTC timestamp column, whatever its unit (ns, us or ms)."""
    delta = pd.to_datetime(ts, utc=True) - datetime(1970, 1, 1, tzinfo=UTC)
    return np.asarray(delta // pd.Timedelta(milliseconds=1), dtype=np.int64)
