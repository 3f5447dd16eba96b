"""Directed tool transitions in a real Redis: after tool A users went on to B, so a trigger on A offers B, and a
trigger on B offers what followed B (not A, which a symmetric co-usage count would offer as much)."""

from __future__ import annotations

import pytest

from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.baselines.tool_transitions import ToolTransitionRecommender
from model.recommender import RecommendationRequest
from streamrec.events import TOOL, PageView
from streamrec.session_store import SessionStore
from tests.tool_chains import assert_the_next_tool_follows_the_chain, chains, observe_in_batches, tool_request

pytestmark = pytest.mark.integration


def test_the_next_tool_is_what_followed_the_finished_one_and_redeliveries_count_once(settings, redis_client):
    store = SessionStore(redis_client, settings)
    transitions = ToolTransitionRecommender(redis_client, settings.key_prefix)
    cooccurrence = SessionCooccurrenceRecommender(redis_client, settings.key_prefix)
    events = chains(20)
    latest = observe_in_batches(store, [transitions, cooccurrence], events)
    assert_the_next_tool_follows_the_chain(transitions, cooccurrence, latest)

    before = transitions.recommend(tool_request("new", "crop", {"crop"}))
    transitions.observe(events[:7], store.apply_batch(events[:7]))  # a redelivered batch
    assert transitions.recommend(tool_request("new", "crop", {"crop"})) == before
    # only tool requests are answered; the co-occurrence model's own keys are untouched by this one's writes
    page_view = PageView(user_id="u1", session_id="s1", item_id="p1")
    assert transitions.recommend(RecommendationRequest("u1", 3, trigger_item=page_view.item_id)) == []
    assert redis_client.exists(transitions._co_key(TOOL, "crop"))
    assert transitions._co_key(TOOL, "crop") != cooccurrence._co_key(TOOL, "crop")
