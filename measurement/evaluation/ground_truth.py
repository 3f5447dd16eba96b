"""What each user did after a trigger, read from the replayed event log: the targets recommendations are judged on.

Targets, for a trigger of kind K (product/tool) at event e of user u:
  next       the next item of kind K in the same session that differs from the trigger's own item;
  engaged    items of kind K the user touched (viewed, carted, bought, used) within the horizon after e;
  converted  items of kind K the user bought or used within the horizon after e.
Also: whether u is a returning user (had a session before this one), whether the next item was cold (no one had
touched it before the trigger), and when the next item was first touched (its age at the trigger; with the log's
window start, the models' training cut-off in a replay, whether it is new since then).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from streamrec.events import PRODUCT, TOOL

CONVERSIONS = {"purchase", "task_completed"}


@dataclass(frozen=True)
class Step:
    position: int  # in the whole log, event-time order
    ts_ms: int
    session_id: str
    event_type: str
    kind: str | None  # product / tool, None for events without an item
    item: str | None


@dataclass(frozen=True)
class Targets:
    next_item: frozenset[str]
    engaged: frozenset[str]
    converted: frozenset[str]
    returning_user: bool
    cold_next: bool  # the next item had never been touched before the trigger
    next_first_ms: int | None = None  # when the next item was first touched in the log (None: no next item)
    trigger_ms: int = 0
    kind: str = PRODUCT  # what the trigger asks for: product or tool

    @property
    def product(self) -> bool:
        return self.kind == PRODUCT

    def next_is_new(self, cutoff_ms: int | None) -> bool:
        """The next item was first touched at or after `cutoff_ms` (no model trained before it can know the item)."""
        return cutoff_ms is not None and self.next_first_ms is not None and self.next_first_ms >= cutoff_ms

    def next_is_young(self, within_ms: int) -> bool:
        """The next item was first touched at most `within_ms` before the trigger, or after it."""
        return self.next_first_ms is not None and self.next_first_ms >= self.trigger_ms - within_ms


@dataclass
class EventLog:
    """Per-user timelines, item first appearances, popularity counts and item attributes of one log."""

    timelines: dict[str, list[Step]] = field(default_factory=lambda: defaultdict(list))
    where: dict[str, tuple[str, int]] = field(default_factory=dict)  # event_id -> (user, index in timeline)
    first_seen: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, item) -> position
    first_seen_ms: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, item) -> event time
    window_start_ms: int | None = None  # the replay's window start: the models' training cut-off
    session_start: dict[tuple[str, str], int] = field(default_factory=dict)  # (user, session) -> position
    user_first: dict[str, int] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    attributes: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # item -> attrs
    window_days: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # user -> active dates

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, window_start: pd.Timestamp | None = None) -> EventLog:
        """Build from an event-log frame (columns of `model.datasets.event_log.LOG_COLUMNS`)."""
        log = cls()
        if window_start is not None:
            log.window_start_ms = round(window_start.timestamp() * 1000)
        frame = frame.sort_values("ts", kind="mergesort").reset_index(drop=True)
        ts = pd.to_datetime(frame["ts"], utc=True)
        ts_ms = ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).astype("int64")
        item = frame["item_id"].where(frame["item_id"].notna(), frame["tool_id"])
        columns = zip(
            frame["event_id"], frame["user_id"], frame["session_id"], frame["type"], ts_ms, item,
            frame["category"], frame["brand"], frame["price"], ts, strict=True,
        )
        for position, (event_id, user, session, kind_name, ms, item_id, category, brand, price, stamp) in enumerate(
            columns
        ):
            item_id = item_id if isinstance(item_id, str) and item_id else None
            kind = TOOL if kind_name == "task_completed" else (PRODUCT if item_id else None)
            step = Step(position, int(ms), session, kind_name, kind, item_id)
            log.where[event_id] = (user, len(log.timelines[user]))
            log.timelines[user].append(step)
            log.session_start.setdefault((user, session), position)
            log.user_first.setdefault(user, position)
            if item_id is not None and kind is not None:
                log.first_seen.setdefault((kind, item_id), position)
                log.first_seen_ms.setdefault((kind, item_id), int(ms))
                log.counts[(kind, item_id)] += 1
                attrs = log.attributes[item_id]
                if isinstance(category, str) and category:
                    attrs.setdefault("category", category)
                if isinstance(brand, str) and brand:
                    attrs.setdefault("brand", brand)
                if price is not None and price == price:
                    attrs.setdefault("price", str(float(price)))
            if window_start is None or stamp >= window_start:
                log.window_days[user].add(stamp.strftime("%Y-%m-%d"))
        return log

    def catalogue(self, kind: str) -> set[str]:
        return {item for (k, item) in self.first_seen if k == kind}

    def targets(self, trigger_event_id: str, kind: str, trigger_item: str | None, horizon_ms: int) -> Targets | None:
        """The trigger's targets, or None when the trigger event is not in the log."""
        found = self.where.get(trigger_event_id)
        if found is None:
            return None
        user, index = found
        timeline = self.timelines[user]
        trigger = timeline[index]
        next_item: set[str] = set()
        engaged: set[str] = set()
        converted: set[str] = set()
        for step in timeline[index + 1 :]:
            if step.ts_ms > trigger.ts_ms + horizon_ms:
                break
            if step.kind != kind or step.item is None or step.item == trigger_item:
                continue
            if not next_item and step.session_id == trigger.session_id:
                next_item.add(step.item)
            engaged.add(step.item)
            if step.event_type in CONVERSIONS:
                converted.add(step.item)
        if not next_item:  # the next item in the session may lie beyond the horizon
            for step in timeline[index + 1 :]:
                same_session = step.session_id == trigger.session_id
                if same_session and step.kind == kind and step.item not in (None, trigger_item):
                    next_item.add(step.item)
                    break
        cold = any(self.first_seen.get((kind, i), -1) > trigger.position for i in next_item)
        returning = self.user_first[user] < self.session_start[(user, trigger.session_id)]
        first_ms = max((self.first_seen_ms[(kind, i)] for i in next_item), default=None)
        return Targets(frozenset(next_item), frozenset(engaged), frozenset(converted), returning, cold, first_ms,
                       trigger.ts_ms, kind)

    def is_new(self, kind: str, item: str, cutoff_ms: int | None = None) -> bool:
        """`item` was first touched at or after `cutoff_ms` (default: the window start)."""
        cutoff = self.window_start_ms if cutoff_ms is None else cutoff_ms
        first = self.first_seen_ms.get((kind, item))
        return cutoff is not None and first is not None and first >= cutoff

    def popularity_percentiles(self, kind: str) -> dict[str, float]:
        """Each item's popularity percentile in its kind (100 = most used), ties averaged."""
        counts = pd.Series({item: n for (k, item), n in self.counts.items() if k == kind}, dtype=float)
        if counts.empty:
            return {}
        ranks = counts.rank(method="average")
        span = max(len(counts) - 1, 1)
        return {item: float((r - 1) / span * 100) for item, r in ranks.items()}


def targets_for(log: EventLog, records: Sequence[tuple[str, str, str | None]], horizon_ms: int) -> list[Targets | None]:
    """Targets for many (trigger_event_id, kind, trigger_item)."""
    return [log.targets(event_id, kind, item, horizon_ms) for event_id, kind, item in records]
