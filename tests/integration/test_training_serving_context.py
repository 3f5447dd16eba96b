"""Training rebuilds session contexts offline; serving reads them from Redis. Both must agree, or the model
is trained on features it never sees in production (training/serving skew)."""

from __future__ import annotations

import pytest

from model.interactions import events_to_frame
from model.two_tower.examples import contexts_before, sort_by_time
from producers.simulator import simulate
from streamrec.session_store import SessionStore

pytestmark = pytest.mark.integration


def test_offline_contexts_equal_what_the_redis_store_serves(settings, redis_client):
    _, events = simulate(1500, seed=21)
    store = SessionStore(redis_client, settings)
    served = store.apply_batch(events)  # each: the context right after that event
    frame = sort_by_time(events_to_frame(events))
    assert list(frame["event_id"]) == [e.event_id for e in events]
    offline = contexts_before(frame, cap=settings.context_items)  # each: the context right before that event

    last_in_session: dict[tuple[str, str], int] = {}
    last_of_user: dict[str, int] = {}
    compared = 0
    for i, event in enumerate(events):
        before = offline[i]
        previous = last_in_session.get((event.user_id, event.session_id))
        if previous is not None:
            after_previous = served[previous]
            assert before.page_views == after_previous.page_views, event.event_id
            assert before.recent_items == after_previous.recent_items, event.event_id
            assert before.categories == after_previous.categories, event.event_id
            assert before.started_ms == after_previous.started_ms and before.last_ms == after_previous.last_ms
            assert before.price_mean == pytest.approx(after_previous.price_mean), event.event_id
            compared += 1
        else:
            assert before.page_views == 0 and before.recent_items == ()
        if event.user_id in last_of_user:
            assert before.user_recent_items == served[last_of_user[event.user_id]].user_recent_items, event.event_id
        last_in_session[(event.user_id, event.session_id)] = i
        last_of_user[event.user_id] = i
    assert compared > 1000
