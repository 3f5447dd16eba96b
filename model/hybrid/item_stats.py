"""What the hybrid ranker knows of each item: popularity overall and in the last hour, age, category and price.

Fitted from the training frame, then kept current by `observe` (the same events the candidate sources see), so an
item that appeared minutes ago has an age, a price and a recent count at the next trigger. The recent count decays
with a half-life of event time (an hour by default): "what is popular now", read in memory at every trigger.
The state is the worker's own (its partitions' events); every figure it feeds is a ratio or a rank within one
trigger's candidates, so a worker that sees 1/N of the traffic gives the same features up to noise.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from model.interactions import utc_ms
from streamrec.events import Event

PRODUCT_EVENTS = ("page_view", "add_to_cart", "purchase")


@dataclass
class ItemStats:
    """Per item: events overall, a decayed recent count, first-seen time, category and price."""

    half_life_ms: int = 3600_000
    total: dict[str, float] = field(default_factory=dict)
    recent: dict[str, tuple[float, int]] = field(default_factory=dict)  # item -> (decayed count, as of ms)
    first_seen_ms: dict[str, int] = field(default_factory=dict)
    category: dict[str, str] = field(default_factory=dict)
    price: dict[str, float] = field(default_factory=dict)
    now_ms: int = 0  # the latest event time seen

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, half_life_ms: int = 3600_000) -> ItemStats:
        stats = cls(half_life_ms=half_life_ms)
        rows = frame[frame["event_type"].isin(PRODUCT_EVENTS) & frame["item_id"].notna()]
        rows = rows.sort_values("ts", kind="mergesort")
        ts = utc_ms(rows["ts"])
        for item, when, category, price in zip(rows["item_id"].astype(str), ts, rows["category"], rows["price"],
                                               strict=True):
            stats._add(item, int(when), category, price)
        return stats

    def observe(self, events: Sequence[Event]) -> None:
        for event in events:
            item = getattr(event, "item_id", None)
            if event.type in PRODUCT_EVENTS and item:
                self._add(item, event.ts_ms, getattr(event, "category", None), getattr(event, "price", None))

    def _add(self, item: str, ts_ms: int, category: object, price: object) -> None:
        self.now_ms = max(self.now_ms, ts_ms)
        self.total[item] = self.total.get(item, 0.0) + 1.0
        self.recent[item] = (self.recent_count(item, ts_ms) + 1.0, ts_ms)
        self.first_seen_ms.setdefault(item, ts_ms)
        if isinstance(category, str) and category:
            self.category[item] = category
        if isinstance(price, int | float) and not isinstance(price, bool) and math.isfinite(price) and price > 0:
            self.price[item] = float(price)

    def recent_count(self, item: str, at_ms: int) -> float:
        """The item's decayed count as of `at_ms` (a later event time decays it further; an earlier one does not
        bring it back: the count is never projected into the past)."""
        count, as_of = self.recent.get(item, (0.0, at_ms))
        return count * 0.5 ** (max(0, at_ms - as_of) / self.half_life_ms)

    def trending(self, n: int, at_ms: int) -> list[tuple[str, float]]:
        """The `n` items with the highest decayed count as of `at_ms`, ties by id."""
        scored = ((item, self.recent_count(item, at_ms)) for item in self.recent)
        return heapq.nsmallest(n, scored, key=lambda pair: (-pair[1], pair[0]))  # a full sort: 1M items
