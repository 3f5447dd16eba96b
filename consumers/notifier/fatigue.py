"""Fatigue rules, as production push services have them: pure decisions over a user's recent push history.

Checked in this order, and the first that fails names the suppression reason: the notification is not stale,
it still offers an item not pushed within the repeat window (repeats are dropped from it), the minimum
interval since the last push has passed, and the hourly and daily caps are not reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consumers.notifier.settings import NotifierSettings
from streamrec.notifications import RecommendedItem

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
SUPPRESSION_REASONS = ("stale", "repeat_item", "min_interval", "hourly_cap", "daily_cap")


@dataclass(frozen=True)
class FatigueRules:
    max_per_hour: int = 0  # 0: no cap
    max_per_day: int = 0
    min_interval_ms: int = 0
    repeat_window_ms: int = 0
    max_age_ms: int = 0

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> FatigueRules:
        return cls(
            max_per_hour=settings.max_per_hour,
            max_per_day=settings.max_per_day,
            min_interval_ms=int(settings.min_interval_s * 1000),
            repeat_window_ms=settings.repeat_window_s * 1000,
            max_age_ms=settings.max_age_s * 1000,
        )


@dataclass(frozen=True)
class PushHistory:
    """What the user was pushed recently: push times (ms) of the last day, and when each item was last pushed."""

    push_times_ms: Sequence[int]
    item_last_pushed_ms: Mapping[str, int]


@dataclass(frozen=True)
class FatigueDecision:
    items: list[RecommendedItem]  # what to push (repeats removed); empty when suppressed
    suppressed: str | None = None  # one of SUPPRESSION_REASONS

    @property
    def allowed(self) -> bool:
        return self.suppressed is None


def item_member(item: RecommendedItem) -> str:
    return f"{item.kind}:{item.item_id}"


def decide(
    rules: FatigueRules, history: PushHistory, items: Sequence[RecommendedItem], created_ms: int, now_ms: int
) -> FatigueDecision:
    """Whether to push now, and which items; `created_ms` is when the worker made the notification."""
    if rules.max_age_ms and now_ms - created_ms > rules.max_age_ms:
        return FatigueDecision([], "stale")
    def pushed_recently(item: RecommendedItem) -> bool:
        last = history.item_last_pushed_ms.get(item_member(item))
        return bool(rules.repeat_window_ms) and last is not None and now_ms - last < rules.repeat_window_ms

    fresh = [item for item in items if not pushed_recently(item)]
    if not fresh:
        return FatigueDecision([], "repeat_item")
    last_push = max(history.push_times_ms, default=None)
    if rules.min_interval_ms and last_push is not None and now_ms - last_push < rules.min_interval_ms:
        return FatigueDecision([], "min_interval")
    if rules.max_per_hour and sum(now_ms - t < HOUR_MS for t in history.push_times_ms) >= rules.max_per_hour:
        return FatigueDecision([], "hourly_cap")
    if rules.max_per_day and sum(now_ms - t < DAY_MS for t in history.push_times_ms) >= rules.max_per_day:
        return FatigueDecision([], "daily_cap")
    return FatigueDecision(fresh)
