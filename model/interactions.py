"""The interactions frame every `fit` takes: one row per event, a fixed set of columns."""

from __future__ import annotations

from collections.abc import Iterable

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
