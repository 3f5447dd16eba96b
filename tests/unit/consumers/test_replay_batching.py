"""Replay batching ends a batch at every trigger (no leakage), and replay namespaces never overlap live ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from consumers.replay.batching import leak_free_batches
from consumers.replay.namespace import NamespaceClash, check_isolated, replay_settings
from consumers.replay.sources import split_at
from consumers.replay.warm_up import without_triggers
from streamrec.events import AddToCart, PageView, Purchase, SessionStart, TaskCompleted
from streamrec.settings import Settings

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def views(n: int, session: str = "s", user: str = "u", start: int = 0) -> list:
    return [PageView(event_id=f"{session}-v{i}", user_id=user, session_id=session, item_id=f"p{i}",
                     ts=T0 + timedelta(seconds=start + i)) for i in range(n)]


def test_each_batch_ends_at_a_trigger_and_holds_no_later_event():
    settings = Settings(trigger_every_nth_page_view=3)
    events = [SessionStart(event_id="start", user_id="u", session_id="s", ts=T0), *views(7)]
    events.insert(3, AddToCart(event_id="cart", user_id="u", session_id="s", item_id="p1",
                               ts=T0 + timedelta(seconds=1.5)))
    batches = list(leak_free_batches(events, settings))
    assert [e for b in batches for e in b] == events  # nothing lost or reordered
    ends = [b[-1].event_id for b in batches[:-1]]
    assert ends == ["cart", "s-v2", "s-v5"]  # the cart, then the 3rd and 6th page views
    assert [e.event_id for e in batches[-1]] == ["s-v6"]


def test_page_view_ordinals_count_per_session_and_ignore_redeliveries():
    settings = Settings(trigger_every_nth_page_view=2)
    a, b = views(2, "a"), views(2, "b", user="w")
    events = [a[0], b[0], a[0], a[1], b[1]]  # a[0] delivered twice
    ends = [batch[-1].event_id for batch in leak_free_batches(events, settings)]
    assert ends == ["a-v0", "a-v1", "b-v1"]  # the redelivery ends a batch (it may re-trigger), ordinals stay 1, 2


def test_warm_up_settings_never_trigger():
    quiet = without_triggers(Settings())
    events = [*views(20), AddToCart(event_id="c", user_id="u", session_id="s", item_id="p", ts=T0)]
    assert len(list(leak_free_batches(events, quiet, max_batch=1000))) == 1


def test_replay_namespace_is_separate_from_live():
    live = Settings(key_prefix="streamrec:", notifications_topic="notifications")
    isolated = replay_settings(live, "run1", "two tower/ranker")
    assert isolated.key_prefix == "replay:run1:two-tower-ranker:"
    assert isolated.notifications_topic not in {live.notifications_topic, live.events_topic}
    with pytest.raises(NamespaceClash):
        check_isolated(live, live.model_copy(update={"key_prefix": "streamrec:replay:"}))
    with pytest.raises(NamespaceClash):
        check_isolated(live, isolated.model_copy(update={"notifications_topic": "notifications"}))


def test_window_split_uses_event_time_not_arrival_order():
    events = views(10)
    shuffled = events[5:] + events[:5]
    data = split_at(shuffled, "t", since=T0 + timedelta(seconds=4), until=T0 + timedelta(seconds=8))
    assert [e.event_id for e in data.warmup] == [f"s-v{i}" for i in range(4)]
    assert [e.event_id for e in data.window] == [f"s-v{i}" for i in range(4, 8)]


@hyp_settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["view", "cart", "buy", "task", "start"]), st.integers(0, 3)),
                max_size=80), st.integers(0, 4))
def test_batches_keep_the_stream_and_every_trigger_closes_its_batch(drawn, nth):
    settings = Settings(trigger_every_nth_page_view=nth)
    kinds = {"view": lambda **kw: PageView(item_id="p", **kw), "cart": lambda **kw: AddToCart(item_id="p", **kw),
             "buy": lambda **kw: Purchase(item_id="p", **kw), "task": lambda **kw: TaskCompleted(tool_id="t", **kw),
             "start": lambda **kw: SessionStart(**kw)}
    events = [kinds[k](event_id=f"e{n}", user_id=f"u{s}", session_id=f"s{s}", ts=T0 + timedelta(seconds=n))
              for n, (k, s) in enumerate(drawn)]
    batches = list(leak_free_batches(events, settings, max_batch=7))
    assert [e for b in batches for e in b] == events
    views: dict[str, int] = {}
    for batch in batches:
        for position, event in enumerate(batch):
            if event.type == "page_view":
                views[event.session_id] = views.get(event.session_id, 0) + 1
            triggers = event.type in ("add_to_cart", "purchase", "task_completed") or (
                event.type == "page_view" and nth > 0 and views[event.session_id] % nth == 0
            )
            if triggers:
                assert position == len(batch) - 1, "a trigger was followed by later events in its batch"
