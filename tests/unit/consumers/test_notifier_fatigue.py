"""Fatigue rules: caps per hour and day, a quiet interval, no item twice in a window, no stale pushes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.notifier.fatigue import DAY_MS, HOUR_MS, FatigueRules, PushHistory, decide, item_member
from streamrec.notifications import RecommendedItem

NOW = 1_800_000_000_000
MIN = 60_000


def items(*ids: str) -> list[RecommendedItem]:
    return [RecommendedItem(item_id=i, score=1.0) for i in ids]


def history(*ago_ms: int, items_ago: dict[str, int] | None = None) -> PushHistory:
    return PushHistory([NOW - a for a in ago_ms], {f"product:{k}": NOW - v for k, v in (items_ago or {}).items()})


def test_no_rules_push_everything():
    decision = decide(FatigueRules(), history(*[MIN] * 50), items("a"), NOW, NOW)
    assert decision.allowed and [i.item_id for i in decision.items] == ["a"]


def test_hourly_cap_counts_only_the_last_hour():
    rules = FatigueRules(max_per_hour=3)
    assert decide(rules, history(5 * MIN, 20 * MIN, 50 * MIN), items("a"), NOW, NOW).suppressed == "hourly_cap"
    # one of the three pushes is 61 minutes old: room for one more
    assert decide(rules, history(5 * MIN, 20 * MIN, 61 * MIN), items("a"), NOW, NOW).allowed


def test_daily_cap_counts_the_last_24_hours():
    rules = FatigueRules(max_per_day=4)
    day = history(2 * HOUR_MS, 5 * HOUR_MS, 9 * HOUR_MS, 23 * HOUR_MS)
    assert decide(rules, day, items("a"), NOW, NOW).suppressed == "daily_cap"
    older = history(2 * HOUR_MS, 5 * HOUR_MS, 9 * HOUR_MS, DAY_MS + MIN)
    assert decide(rules, older, items("a"), NOW, NOW).allowed


def test_minimum_interval_between_pushes():
    rules = FatigueRules(min_interval_ms=10 * MIN)
    assert decide(rules, history(9 * MIN), items("a"), NOW, NOW).suppressed == "min_interval"
    assert decide(rules, history(10 * MIN), items("a"), NOW, NOW).allowed


def test_items_pushed_within_the_window_are_dropped_and_an_all_repeat_push_is_suppressed():
    rules = FatigueRules(repeat_window_ms=DAY_MS)
    recent = history(items_ago={"a": HOUR_MS, "b": 2 * DAY_MS})
    partial = decide(rules, recent, items("a", "b", "c"), NOW, NOW)
    assert partial.allowed
    assert [i.item_id for i in partial.items] == ["b", "c"]
    assert decide(rules, recent, items("a"), NOW, NOW).suppressed == "repeat_item"


def test_a_notification_older_than_max_age_is_stale():
    rules = FatigueRules(max_age_ms=HOUR_MS)
    assert decide(rules, history(), items("a"), NOW - HOUR_MS - 1, NOW).suppressed == "stale"
    assert decide(rules, history(), items("a"), NOW - HOUR_MS + 1, NOW).allowed


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 4 * HOUR_MS), min_size=1, max_size=60),
    per_hour=st.integers(1, 6),
    per_day=st.integers(1, 20),
    interval=st.integers(0, 30 * MIN),
)
def test_replaying_any_arrival_pattern_never_breaks_a_cap(gaps, per_hour, per_day, interval):
    """Feed notifications at random times through the rules, recording what was pushed: no window over a cap."""
    rules = FatigueRules(max_per_hour=per_hour, max_per_day=per_day, min_interval_ms=interval)
    pushed: list[int] = []
    now = NOW
    for n, gap in enumerate(gaps):
        now += gap
        decision = decide(rules, PushHistory(list(pushed), {}), items(f"i{n}"), now, now)
        if decision.allowed:
            pushed.append(now)
    for t in pushed:
        assert sum(t <= u < t + HOUR_MS for u in pushed) <= per_hour
        assert sum(t <= u < t + DAY_MS for u in pushed) <= per_day
    assert all(b - a >= interval for a, b in zip(pushed, pushed[1:], strict=False))
    assert pushed, "the first notification is always allowed"


@pytest.mark.parametrize("kind", ["product", "tool"])
def test_item_members_keep_kinds_apart(kind):
    assert item_member(RecommendedItem(item_id="x", score=0, kind=kind)) == f"{kind}:x"
