"""Training examples as the worker would see them: the session context right before each interaction.

`contexts_before` replays an interactions frame the way `streamrec/lua/apply_event.lua` builds session
context in Redis, so the query tower is trained on exactly the features it gets when serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.two_tower.features import FeatureSpec, category_histogram, dense_features, pad_history, utc_ms
from streamrec.events import PRODUCT
from streamrec.session_store import SessionContext

ITEM_EVENTS = ("page_view", "add_to_cart", "purchase")


def sort_by_time(frame: pd.DataFrame) -> pd.DataFrame:
    """Event-time order, file order for ties (the ASOS pairs are 1 ms apart in file order)."""
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


@dataclass
class _Session:
    session_id: str
    started_ms: int
    last_ms: int = 0
    page_views: int = 0
    events: int = 0
    price_sum: float = 0.0
    priced: int = 0
    items: list[str] | None = None
    categories: dict[str, int] | None = None


def contexts_before(frame: pd.DataFrame, cap: int = 20) -> list[SessionContext]:
    """For each row of a time-sorted frame, the user's session context just before that event."""
    sessions: dict[str, _Session] = {}
    user_recent: dict[str, list[str]] = {}
    out: list[SessionContext] = []
    ts_ms = utc_ms(frame["ts"])
    columns = zip(
        frame["user_id"].astype(str), frame["session_id"].astype(str), ts_ms, frame["event_type"],
        frame["item_id"], frame["category"], frame["price"], strict=True,
    )
    for user, session_id, ts, event_type, item, category, price in columns:
        current = sessions.get(user)
        recent = user_recent.setdefault(user, [])
        if current is None or current.session_id != session_id:
            current = _Session(session_id, int(ts), items=[], categories={})
            sessions[user] = current
        out.append(
            SessionContext(
                user_id=user, session_id=session_id, started_ms=current.started_ms, last_ms=current.last_ms or int(ts),
                page_views=current.page_views, events=current.events,
                price_mean=current.price_sum / current.priced if current.priced else None,
                recent_items=tuple(current.items), categories=dict(current.categories),
                user_recent_items=tuple(recent),
            )
        )
        current.events += 1
        current.last_ms = max(current.last_ms, int(ts))
        if event_type == "page_view":
            current.page_views += 1
        if price is not None and pd.notna(price) and event_type in ITEM_EVENTS:
            current.price_sum += float(price)
            current.priced += 1
        if event_type in ITEM_EVENTS and isinstance(item, str) and item:  # as the store: tools are not items
            current.items.insert(0, item)
            del current.items[cap:]
            recent.insert(0, item)
            del recent[cap:]
        if isinstance(category, str) and category:
            current.categories[category] = current.categories.get(category, 0) + 1
    return out


def query_history(context: SessionContext | None) -> tuple[str, ...]:
    """Items the query pools over: this session's, else the user's recent ones from earlier sessions."""
    if context is None:
        return ()
    return context.recent_items or context.user_recent_items


def query_inputs(spec: FeatureSpec, user_ids: Sequence[str], contexts: Sequence[SessionContext | None],
                 now_ms: Sequence[int]) -> dict[str, np.ndarray]:
    """Query-tower inputs for a batch (shared by training and serving, so both see the same features)."""
    page_views = np.array([c.page_views if c else 0 for c in contexts])
    seconds = np.array([c.session_seconds if c else 0.0 for c in contexts])
    has_session = np.array([bool(c and c.recent_items) for c in contexts], dtype=np.float32)
    return {
        "user": spec.users.lookup(user_ids),
        "history": pad_history(spec, [query_history(c) for c in contexts]),
        "categories": category_histogram(spec, [c.categories if c else {} for c in contexts]),
        "dense": dense_features(page_views, seconds, has_session, np.asarray(now_ms, dtype=np.int64)),
    }


@dataclass
class RetrievalExamples:
    """Aligned arrays: query inputs, the positive item's index, its event time (for time-ordered splits)."""

    queries: dict[str, np.ndarray]
    items: np.ndarray
    ts_ms: np.ndarray
    user_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    def take(self, rows: np.ndarray) -> RetrievalExamples:
        return RetrievalExamples({k: v[rows] for k, v in self.queries.items()}, self.items[rows], self.ts_ms[rows],
                                 self.user_ids[rows])


def retrieval_examples(frame: pd.DataFrame, spec: FeatureSpec) -> RetrievalExamples:
    """One example per product interaction with a known item: (context before it) -> (that item)."""
    frame = sort_by_time(frame)
    contexts = contexts_before(frame, cap=max(spec.history_length, 20))
    rows = np.flatnonzero(
        (frame["kind"] == PRODUCT).to_numpy() & frame["event_type"].isin(ITEM_EVENTS).to_numpy()
        & frame["item_id"].notna().to_numpy()
    )
    items = spec.items.lookup(frame["item_id"].to_numpy()[rows])
    rows, items = rows[items > 0], items[items > 0]
    ts_ms = utc_ms(frame["ts"])[rows]
    users = frame["user_id"].astype(str).to_numpy()[rows]
    queries = query_inputs(spec, users, [contexts[i] for i in rows], ts_ms)
    return RetrievalExamples(queries, items, ts_ms, users)
