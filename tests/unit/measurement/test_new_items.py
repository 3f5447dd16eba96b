"""A replay report's new-item figures: slices by the next item's age, notifications carrying new items, and the
time from an item's first event to its first notification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from consumers.replay.records import ReplayRecord
from measurement.evaluation.ground_truth import EventLog
from measurement.evaluation.replay_evaluation import evaluate_model_records
from model.metrics import metric_value
from streamrec.notifications import Notification, RecommendedItem

T0 = datetime(2024, 5, 1, tzinfo=UTC)
CUTOFF = T0 + timedelta(hours=10)  # the window start: the models were trained on what came before


def _log(rows: list[tuple[str, str, str, float, str]]) -> EventLog:
    """rows: (event_id, user, session, hours after T0, item); all page views."""
    frame = pd.DataFrame([
        {"event_id": e, "user_id": u, "session_id": s, "type": "page_view", "ts": T0 + timedelta(hours=h),
         "item_id": i, "tool_id": None, "category": None, "brand": None, "price": None}
        for e, u, s, h, i in rows
    ])
    return EventLog.from_frame(frame, pd.Timestamp(CUTOFF))


def _record(trigger: str, user: str, hours: float, items: list[str]) -> ReplayRecord:
    notification = Notification(
        notification_id=trigger, user_id=user, session_id=f"{user}-s", model_name="m", model_version="1",
        reason="r", trigger_event_id=trigger, trigger_event_type="page_view", trigger_ts=T0 + timedelta(hours=hours),
        items=[RecommendedItem(item_id=i, score=1.0) for i in items])
    return ReplayRecord(notification=notification, ranked=items, scores=[1.0] * len(items))


EVENTS = _log([
    ("w0", "x", "x-s", 1, "old"),  # before the cut-off: a warm item
    ("w1", "y", "y-s", 11, "launched"),  # first touched 1 h after the cut-off
    ("a1", "a", "a-s", 30, "old"), ("a2", "a", "a-s", 30.1, "launched"),  # next item new, 19 h old at the trigger
    ("b1", "b", "b-s", 30, "launched"), ("b2", "b", "b-s", 30.1, "old"),  # next item warm
    ("c1", "c", "c-s", 40, "old"), ("c2", "c", "c-s", 40.1, "fresh"),  # next item touched by nobody before
    ("d1", "d", "d-s", 41, "fresh"), ("d2", "d", "d-s", 41.2, "old"),
])


def test_next_items_are_sliced_by_when_they_were_first_touched():
    records = [
        _record("a1", "a", 30, ["launched", "old"]),  # hit on a new item
        _record("b1", "b", 30, ["fresh", "x"]),  # miss on a warm item
        _record("c1", "c", 40, ["old", "x"]),  # miss on a cold item
        _record("d1", "d", 41, ["old", "fresh"]),  # hit on a warm item
    ]
    rows = evaluate_model_records("m", records, EVENTS, horizon_s=3600, ks=(1, 2))
    assert metric_value(rows, "HR", 2, "next", "new-items") == 0.5  # a hit, c missed
    assert metric_value(rows, "HR", 2, "next", "warm-items") == 0.5  # d hit, b missed
    assert metric_value(rows, "HR", 2, "next", "cold-items") == 0.0
    assert metric_value(rows, "HR", 2, "next", "new-1d") == 0.5  # "launched" was 19 h old for a; c's is cold
    assert metric_value(rows, "HR", 2, "next", "new-1h") == 0.0  # only c's cold item is that young
    assert metric_value(rows, "targets_share", None, "next", "new-items") == 0.5
    assert metric_value(rows, "targets_share", None, "next", "warm-items") == 0.5


def test_notifications_with_new_items_and_the_minutes_to_an_items_first_notification():
    records = [
        _record("a1", "a", 30, ["old", "x"]),
        _record("b1", "b", 30, ["launched", "x"]),  # "launched" first notified 19 h after its first event
        _record("c1", "c", 40, ["old", "x"]),
        _record("d1", "d", 41, ["fresh", "old"]),  # "fresh" first notified 0.9 h after its first event
    ]
    rows = evaluate_model_records("m", records, EVENTS, horizon_s=3600, ks=(1, 2))
    assert metric_value(rows, "notifications_with_new_share", None, "all", "new-items") == 0.5
    assert metric_value(rows, "notifications_with_new_share", None, "all", "new-1d") == 0.5
    assert metric_value(rows, "notifications_with_new_share", None, "all", "new-1h") == 0.25
    assert metric_value(rows, "new_items_notified_share", None, "all", "new-items") == 1.0  # both new items
    median = metric_value(rows, "minutes_to_first_notification_p50", None, "all", "new-items")
    assert abs(median - (19 * 60 + 0.9 * 60) / 2) < 1e-6


def test_item_slices_are_of_product_triggers_only():
    frame = pd.DataFrame([
        {"event_id": e, "user_id": "t", "session_id": "t-s", "type": "task_completed", "ts": T0 + timedelta(hours=h),
         "item_id": None, "tool_id": tool, "category": None, "brand": None, "price": None}
        for e, h, tool in (("t1", 30, "crop"), ("t2", 30.1, "compress"))  # both tools first used after the cut-off
    ])
    log = EventLog.from_frame(frame, pd.Timestamp(CUTOFF))
    record = _record("t1", "t", 30, ["compress"])
    record = record.model_copy(update={"notification": record.notification.model_copy(
        update={"items": [RecommendedItem(item_id="compress", score=1.0, kind="tool")]})})
    rows = evaluate_model_records("m", [record], log, horizon_s=3600, ks=(1,))
    assert metric_value(rows, "HR", 1, "next", "all") == 1.0
    assert metric_value(rows, "targets_share", None, "next", "new-items") == 0.0  # no product target at all
