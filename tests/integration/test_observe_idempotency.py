"""The streaming model observes every event exactly once, whatever the worker's crashes and retries do.

Redis writes and model observation are two steps: an event whose session write landed but whose observation
did not (a SIGKILL between the two, a retry after a half-failed pipeline) comes back as a duplicate and must
still be learnt from, once, as of its own place in the session.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from consumers.worker.recommendation_pipeline import RecommendationPipeline
from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.recommender import StaticRecommenderSource
from streamrec.events import AddToCart, PageView, TaskCompleted
from streamrec.session_store import SessionStore

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _batch():
    events = []
    for user in ("u1", "u2"):
        for n, item in enumerate(["a", "b", "c", "a", "d", "e", "b"]):
            events.append(PageView(event_id=f"{user}-pv{n}", user_id=user, session_id=f"{user}-s",
                                   ts=T0 + timedelta(seconds=10 * n), item_id=item, price=1.0 + n))
        events.append(AddToCart(event_id=f"{user}-cart", user_id=user, session_id=f"{user}-s",
                                ts=T0 + timedelta(seconds=100), item_id="f"))
        for n, tool in enumerate(["t1", "t2", "t3"]):
            events.append(TaskCompleted(event_id=f"{user}-task{n}", user_id=user, session_id=f"{user}-s",
                                        ts=T0 + timedelta(seconds=200 + n), tool_id=tool))
    return events


def _pipeline(settings, redis_client):
    namespace = settings.model_copy(update={"key_prefix": f"{settings.key_prefix}{uuid.uuid4().hex[:6]}:"})
    store = SessionStore(redis_client, namespace)
    model = SessionCooccurrenceRecommender(redis_client, namespace.key_prefix)
    return RecommendationPipeline(store, StaticRecommenderSource(model), namespace)


def _model_state(pipeline, redis_client) -> dict[str, dict[bytes, float]]:
    prefix = pipeline.store.keys.global_key("")
    return {
        key.decode()[len(prefix):]: {m: round(s, 9) for m, s in redis_client.zrange(key, 0, -1, withscores=True)}
        for key in redis_client.scan_iter(match=prefix + "*")
    }


def test_a_batch_applied_but_not_observed_is_observed_on_redelivery(settings, redis_client):
    clean = _pipeline(settings, redis_client)
    clean.prepare(_batch())
    expected = _model_state(clean, redis_client)
    assert expected, "the batch must teach the model something"

    crashed = _pipeline(settings, redis_client)
    crashed.store.apply_batch(_batch())  # the session write landed, then the worker died before observe()
    crashed.prepare(_batch())  # redelivery: every event is a duplicate now
    assert _model_state(crashed, redis_client) == expected


def test_a_batch_observed_twice_is_counted_once(settings, redis_client):
    once = _pipeline(settings, redis_client)
    once.prepare(_batch())
    twice = _pipeline(settings, redis_client)
    twice.prepare(_batch())
    twice.prepare(_batch())
    assert _model_state(twice, redis_client) == _model_state(once, redis_client)


def test_a_half_applied_batch_retried_teaches_the_model_like_a_clean_one(settings, redis_client):
    """Half the batch written when the pipeline failed: the retry observes both halves once."""
    events = _batch()
    clean = _pipeline(settings, redis_client)
    clean.prepare(events)
    half = _pipeline(settings, redis_client)
    half.store.apply_batch(events[: len(events) // 2])
    half.prepare(events)
    assert _model_state(half, redis_client) == _model_state(clean, redis_client)
