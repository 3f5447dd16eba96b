"""The Redis session store against the real server: context, idempotency, caps, TTLs, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from streamrec.events import PageView, Purchase, SessionEnd, TaskCompleted
from streamrec.session_store import FilterQuery, SentNotification, SessionStore

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(settings, redis_client):
    return SessionStore(redis_client, settings.model_copy(update={"recent_items_cap": 3}))


def _view(n: int, item: str, category: str = "shoes", **kw) -> PageView:
    return PageView(event_id=f"pv{n}", user_id="u1", session_id="s1", ts=T0 + timedelta(seconds=10 * n),
                    item_id=item, category=category, price=10.0 * n, **kw)


def test_context_tracks_views_time_items_and_categories(store):
    contexts = store.apply_batch([_view(1, "a"), _view(2, "b", "hats"), _view(3, "c"), _view(4, "d")])
    last = contexts[-1]
    assert last.page_views == 4
    assert last.session_seconds == 30.0
    assert last.recent_items == ("d", "c", "b")  # newest first, capped at 3
    assert last.categories == {"shoes": 3, "hats": 1}
    assert last.price_mean == pytest.approx(25.0)
    assert [c.page_view_ordinal for c in contexts] == [1, 2, 3, 4]
    latest = store.latest_context("u1")
    assert latest is not None and latest.page_views == 4 and latest.recent_items == ("d", "c", "b")


def test_a_redelivered_event_changes_nothing_and_keeps_its_ordinal(store):
    store.apply_batch([_view(1, "a"), _view(2, "b")])
    again = store.apply(_view(1, "a"))
    assert again.duplicate
    assert again.page_views == 2
    assert again.page_view_ordinal == 1
    assert again.recent_items == ("a",)  # its lists as of itself, as the first delivery saw them
    assert again.user_recent_items == ("a",)


def test_filters_see_consumption_as_of_the_trigger_time(store):
    buy = Purchase(event_id="buy", user_id="u1", session_id="s1", ts=T0 + timedelta(minutes=5), item_id="p9")
    tool = TaskCompleted(event_id="task", user_id="u1", session_id="s1", ts=T0 + timedelta(minutes=1), tool_id="t1")
    store.apply_batch([tool, buy])
    between_ms = int((T0 + timedelta(minutes=2)).timestamp() * 1000)
    first, between, after = store.filters_batch(
        [FilterQuery("u1", "x", tool.ts_ms - 1), FilterQuery("u1", "y", between_ms), FilterQuery("u1", "z", buy.ts_ms)],
    )
    assert first.excluded("tool") == set()
    assert between.excluded("tool") == {"t1"} and between.excluded("product") == set()
    assert after.excluded("product") == {"p9"}


def test_notified_items_are_filtered_within_the_cooldown_only(store, settings):
    sent_ms = int(T0.timestamp() * 1000)
    store.record_notifications([SentNotification("u1", "trigger-1", ("product:p1", "product:p2"), sent_ms)])
    soon, late = store.filters_batch([
        FilterQuery("u1", "trigger-2", sent_ms + 60_000),
        FilterQuery("u1", "trigger-3", sent_ms + settings.notify_cooldown_s * 1000 + 1),
    ])
    assert soon.excluded("product") == {"p1", "p2"}
    assert late.excluded("product") == set()
    (again,) = store.filters_batch([FilterQuery("u1", "trigger-1", sent_ms)])
    assert again.trigger_already_notified and not soon.trigger_already_notified


def test_sessions_expire_after_idle_ttl_and_user_history_lives_longer(store, redis_client, settings):
    store.apply_batch([_view(1, "a"), SessionEnd(event_id="end", user_id="u1", session_id="s1", ts=T0)])
    session_ttl = redis_client.ttl(store.keys.session("u1", "s1"))
    history_ttl = redis_client.ttl(store.keys.user("u1"))
    assert 0 < session_ttl <= settings.session_ttl_s
    assert session_ttl < history_ttl <= settings.user_history_ttl_s


def test_delete_namespace_removes_only_this_prefix(store, redis_client):
    store.apply(_view(1, "a"))
    redis_client.set("other-namespace:keep", "1")
    try:
        assert store.delete_namespace() > 0
        assert store.latest_context("u1") is None
        assert redis_client.get("other-namespace:keep") == b"1"
    finally:
        redis_client.delete("other-namespace:keep")


def test_latest_context_hands_out_as_many_items_as_the_event_path(settings, redis_client):
    store = SessionStore(redis_client, settings.model_copy(update={"context_items": 2}))
    served = store.apply_batch([_view(1, "a"), _view(2, "b"), _view(3, "c")])[-1]
    latest = store.latest_context("u1")
    assert served.recent_items == latest.recent_items == ("c", "b")
    assert served.user_recent_items == latest.user_recent_items == ("c", "b")


def _bad_price(n: int, price: float) -> PageView:
    """A page view whose price slipped past decoding (the store must not rely on the schema refusing it)."""
    return PageView.model_construct(event_id=f"bad{n}", user_id="u1", session_id="s1",
                                    ts=T0 + timedelta(seconds=10 * n), item_id="x", price=price)


@pytest.mark.parametrize("price", [float("inf"), float("nan"), -float("inf")])
def test_an_unappliable_event_fails_before_any_write_of_its_batch(store, redis_client, price):
    with pytest.raises(ValueError, match="price"):
        store.apply_batch([_view(1, "a"), _bad_price(2, price), _view(3, "c")])
    assert list(redis_client.scan_iter(match=f"{store.settings.key_prefix}*")) == []  # nothing half-applied
    contexts = store.apply_batch([_view(1, "a"), _view(3, "c")])  # the healthy events are new, not duplicates
    assert [c.duplicate for c in contexts] == [False, False]


@pytest.mark.parametrize("index, value", [(12, "inf"), (12, "nan"), (12, "1e999"), (12, "abc"), (2, "soon"),
                                          (8, ""), (13, "x")])
def test_the_script_checks_every_argument_before_its_first_write(store, redis_client, index, value):
    keys, args = store._script_call(_view(1, "a"))
    args[index] = value
    with pytest.raises(redis.exceptions.ResponseError, match="apply_event"):
        store._apply(keys=keys, args=args)
    assert list(redis_client.scan_iter(match=f"{store.settings.key_prefix}*")) == []


def test_far_future_event_times_are_stored_as_integers(store, redis_client):
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    event = PageView(event_id="far", user_id="u1", session_id="s1", ts=far, item_id="a", price=1.0)
    context = store.apply(event)
    assert context.last_ms == context.started_ms == 253_402_300_799_000
    raw = redis_client.hget(store.keys.session("u1", "s1"), "last_ms")
    assert raw == b"253402300799000"


def test_a_future_trigger_time_does_not_wipe_cooldowns(store, settings):
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    store.record_notifications([SentNotification("u1", "trigger-1", ("product:p1",), now_ms)])
    far_ms = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)
    store.record_notifications([SentNotification("u1", "trigger-far", ("product:p2",), far_ms)])
    (soon,) = store.filters_batch([FilterQuery("u1", "trigger-2", now_ms + 60_000)])
    assert soon.excluded("product") == {"p1"}  # p1 is still cooling down


def test_a_notification_recorded_late_never_moves_a_cooldown_back(store, settings):
    """A restore (or a redone batch) records an older notification after a newer one of the same item."""
    newer_ms = int(T0.timestamp() * 1000) + 3_600_000
    store.record_notifications([SentNotification("u1", "trigger-new", ("product:p1",), newer_ms)])
    store.record_notifications([SentNotification("u1", "trigger-old", ("product:p1",), newer_ms - 3_600_000)])
    cooldown_ms = settings.notify_cooldown_s * 1000
    # Still cooling down just before the newer notification's window ends: the older time did not win.
    (filters,) = store.filters_batch([FilterQuery("u1", "trigger-x", newer_ms + cooldown_ms - 1000)])
    assert "p1" in filters.excluded("product")
