"""What a user did next after a trigger: next item in the session, engaged/converted within the horizon, slices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from measurement.evaluation.ground_truth import EventLog

T0 = datetime(2024, 5, 1, tzinfo=UTC)
HOUR_MS = 3600 * 1000


def log(rows: list[tuple[str, str, str, str, float, str | None]]) -> EventLog:
    """rows: (event_id, user, session, type, minutes after T0, item)."""
    frame = pd.DataFrame(
        [
            {"event_id": e, "user_id": u, "session_id": s, "type": t, "ts": T0 + timedelta(minutes=m),
             "item_id": i if t != "task_completed" else None, "tool_id": i if t == "task_completed" else None,
             "category": None, "brand": None, "price": None}
            for e, u, s, t, m, i in rows
        ]
    )
    return EventLog.from_frame(frame)


def test_next_item_is_the_next_different_item_in_the_same_session():
    events = log([
        ("e1", "u", "s1", "page_view", 0, "a"),
        ("e2", "u", "s1", "page_view", 1, "a"),  # the trigger item again: not a target
        ("e3", "u", "s1", "page_view", 2, None),  # a landing page: no item
        ("e4", "u", "s1", "add_to_cart", 3, "b"),
        ("e5", "u", "s1", "page_view", 4, "c"),
    ])
    targets = events.targets("e1", "product", "a", HOUR_MS)
    assert targets.next_item == {"b"}
    assert targets.engaged == {"b", "c"}
    assert targets.converted == set()


def test_horizon_bounds_engaged_and_converted_but_not_the_next_item():
    events = log([
        ("e1", "u", "s1", "page_view", 0, "a"),
        ("e2", "u", "s1", "purchase", 30, "b"),
        ("e3", "u", "s1", "page_view", 200, "c"),  # same session, beyond a 1 h horizon
        ("e4", "u", "s2", "purchase", 300, "d"),
    ])
    targets = events.targets("e1", "product", "a", HOUR_MS)
    assert targets.converted == {"b"}
    assert targets.engaged == {"b"}
    assert events.targets("e3", "product", "c", HOUR_MS).next_item == frozenset()  # next session does not count
    assert events.targets("e3", "product", "c", 3 * HOUR_MS).converted == {"d"}


def test_other_users_and_kinds_are_not_targets():
    events = log([
        ("e1", "u", "s1", "task_completed", 0, "t1"),
        ("e2", "v", "s9", "task_completed", 1, "t2"),  # another user
        ("e3", "u", "s1", "page_view", 2, "p1"),  # a product after a tool trigger
        ("e4", "u", "s1", "task_completed", 3, "t3"),
    ])
    targets = events.targets("e1", "tool", "t1", HOUR_MS)
    assert targets.next_item == {"t3"}
    assert targets.converted == {"t3"}


def test_returning_users_and_cold_items():
    events = log([
        ("e1", "u", "s1", "page_view", 0, "a"),
        ("e2", "u", "s2", "page_view", 60, "b"),
        ("e3", "u", "s2", "page_view", 61, "brand-new"),
        ("e4", "w", "s3", "page_view", 62, "a"),
        ("e5", "w", "s3", "page_view", 63, "b"),
    ])
    first_session = events.targets("e1", "product", "a", HOUR_MS)
    later_session = events.targets("e2", "product", "b", HOUR_MS)
    assert not first_session.returning_user
    assert later_session.returning_user
    assert later_session.cold_next  # nobody had touched "brand-new" before the trigger
    assert not events.targets("e4", "product", "a", HOUR_MS).cold_next  # "b" was seen before


def test_popularity_percentiles_rank_items_by_use():
    events = log([("e1", "u", "s", "page_view", 0, "a"), ("e2", "u", "s", "page_view", 1, "a"),
                  ("e3", "u", "s", "page_view", 2, "b"), ("e4", "u", "s", "page_view", 3, "c"),
                  ("e5", "u", "s", "page_view", 4, "a")])
    pct = events.popularity_percentiles("product")
    assert pct["a"] == 100.0
    assert pct["b"] == pct["c"] < pct["a"]
