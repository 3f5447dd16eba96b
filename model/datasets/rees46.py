"""REES46 multi-category store log (`../shared/data/rees46-slice/events.parquet`) as streamrec events.

view -> page_view, cart -> add_to_cart, purchase -> purchase; the category is `category_code` when the
log has one, else the numeric `category_id`, so every product carries a category for the ranker.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from model.datasets import shared_data_dir
from streamrec.events import AddToCart, Event, PageView, Purchase

FOLDER = "rees46-slice"
EVENT_CLASSES = {"view": PageView, "cart": AddToCart, "purchase": Purchase}


def default_path(data_dir: Path | None = None) -> Path:
    return (data_dir or shared_data_dir()) / FOLDER / "events.parquet"


def load_log(path: Path) -> pd.DataFrame:
    """The raw log, in event-time order (stable for equal times)."""
    frame = pd.read_parquet(path)
    return frame.sort_values("event_time", kind="mergesort").reset_index(drop=True)


def log_events(frame: pd.DataFrame) -> list[Event]:
    """Each known row as an event (unknown event types are skipped); ids are stable: `rees46-<row>`."""
    events: list[Event] = []
    category = frame["category_code"].where(frame["category_code"].notna(), frame["category_id"].astype(str))
    brand = frame["brand"].where(frame["brand"].notna(), None)
    for i, row in enumerate(
        zip(frame["event_type"], frame["event_time"], frame["user_id"], frame["user_session"], frame["product_id"],
            category, brand, frame["price"], strict=True)
    ):
        kind, ts, user, session, product, cat, brand_name, price = row
        cls = EVENT_CLASSES.get(kind)
        if cls is None:
            continue
        events.append(
            cls(
                event_id=f"rees46-{i}",
                user_id=str(user),
                session_id=str(session),
                ts=ts.to_pydatetime(),
                item_id=str(product),
                category=str(cat),
                brand=brand_name if isinstance(brand_name, str) else None,
                price=float(price) if price is not None and price >= 0 else None,
            )
        )
    return events


def load_events(path: Path | None = None) -> list[Event]:
    return log_events(load_log(path or default_path()))
