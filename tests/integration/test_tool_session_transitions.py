"""Tool transitions within sessions in a real Redis: after tool A users went on to B, so a trigger on A offers B,
and a trigger on B offers what followed B (not A, which a symmetric co-usage count would offer as much); only tools
finished one after another in one session count as a transition."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.baselines.tool_session_transitions import _OBSERVE, ToolSessionTransitionRecommender
from model.recommender import RecommendationRequest
from streamrec.events import TOOL, PageView, TaskCompleted
from streamrec.redis_connection import SHARDS, ScriptCall, ScriptRunner
from streamrec.session_store import SessionStore
from tests.tool_chains import START, assert_the_next_tool_follows_the_chain, chains, observe_in_batches, tool_request

pytestmark = pytest.mark.integration



def test_the_next_tool_is_what_followed_the_finished_one_and_redeliveries_count_once(settings, redis_client):
    store = SessionStore(redis_client, settings)
    transitions = ToolSessionTransitionRecommender(redis_client, settings.key_prefix)
    cooccurrence = SessionCooccurrenceRecommender(redis_client, settings.key_prefix)
    events = chains(20)
    latest = observe_in_batches(store, [transitions, cooccurrence], events)
    assert_the_next_tool_follows_the_chain(transitions, cooccurrence, latest)
    # nor one in the request's exclude, however likely
    assert "compress" not in {s.item_id for s in transitions.recommend(tool_request("new", "crop", {"compress"}))}

    before = transitions.recommend(tool_request("new", "crop", {"crop"}, k=5))
    counts = redis_client.zrange(transitions._next_key("crop"), 0, -1, withscores=True)
    observe_in_batches(store, [transitions], events[:7])  # a redelivered batch
    assert redis_client.zrange(transitions._next_key("crop"), 0, -1, withscores=True) == counts
    assert transitions.recommend(tool_request("new", "crop", {"crop"}, k=5)) == before
    # only tool requests are answered; the co-occurrence model's own keys are untouched by this one's writes
    page_view = PageView(user_id="u1", session_id="s1", item_id="p1")
    assert transitions.recommend(RecommendationRequest("u1", 3, trigger_item=page_view.item_id)) == []
    assert transitions._next_key("crop") != cooccurrence._co_key(TOOL, "crop")
    assert redis_client.zscore(transitions._next_key("crop"), "compress") == 20


def test_only_tools_finished_one_after_another_in_a_session_are_a_transition(settings, redis_client):
    """The last tool of one session and the first of the next are no transition (the user's taste picks the
    first tool of a session); within a session A, B, A counts A -> B and B -> A, and A, A counts nothing."""
    store = SessionStore(redis_client, settings)
    transitions = ToolSessionTransitionRecommender(redis_client, settings.key_prefix)
    visits = [("s1", "crop"), ("s1", "compress"), ("s2", "convert"), ("s2", "convert"), ("s2", "resize"),
              ("s2", "convert")]
    events = [TaskCompleted(user_id="u1", session_id=session, tool_id=tool, ts=START + timedelta(minutes=i))
              for i, (session, tool) in enumerate(visits)]
    observe_in_batches(store, [transitions], events, batch=2)

    def followers(tool: str) -> dict[str, float]:
        return {m.decode(): s for m, s in redis_client.zrange(transitions._next_key(tool), 0, -1, withscores=True)}

    assert followers("crop") == {"compress": 1.0}
    assert followers("compress") == {}  # convert began the next session
    assert followers("convert") == {"resize": 1.0}
    assert followers("resize") == {"convert": 1.0}
    popularity = {m: s for shard in range(SHARDS)
                  for m, s in redis_client.zrange(transitions._pop_key(shard), 0, -1, withscores=True)}
    assert popularity[b"convert"] == 3.0


def test_a_finished_tool_with_few_counts_leans_on_popularity(settings, redis_client):
    """With no transitions out of a tool yet, its answer is the most used tools; a few transitions outrank them."""
    store = SessionStore(redis_client, settings)
    transitions = ToolSessionTransitionRecommender(redis_client, settings.key_prefix)
    events = [TaskCompleted(user_id=f"u{u}", session_id=f"s{u}", tool_id="popular",
                            ts=START + timedelta(minutes=u)) for u in range(5)]
    events += [TaskCompleted(user_id="v", session_id="sv", tool_id=tool, ts=START + timedelta(hours=1, minutes=i))
               for i, tool in enumerate(["rare", "niche"])]
    observe_in_batches(store, [transitions], events)
    assert [s.item_id for s in transitions.recommend(tool_request("new", "unseen", set(), k=3))] == [
        "popular", "niche", "rare"]
    assert [s.item_id for s in transitions.recommend(tool_request("new", "rare", {"rare"}, k=2))] == [
        "niche", "popular"]


def test_a_bad_argument_changes_nothing(settings, redis_client):
    """The user's script checks every event before its first write: a malformed one fails the whole call."""
    transitions = ToolSessionTransitionRecommender(redis_client, settings.key_prefix)
    keys = [transitions._observed_key("u1"), transitions._counted_key("u1"), transitions._last_tool_key("u1")]
    with pytest.raises(redis.ResponseError, match="bad event"):
        ScriptRunner(redis_client).run([ScriptCall(_OBSERVE, keys, [
            512, 60, 60, 2,
            "e1", "1000", "s1", "crop", "",
            "e2", "1001", "", "compress", "crop",  # no session id
        ])])
    assert not redis_client.exists(*keys)
