"""Two workers in one consumer group split the partitions and together notify each trigger once; with the streaming
session-kNN served, the index they write together is the one the offline V-SKNN builds from all the events."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis

from model.baselines.session_knn import SessionKNNRecommender
from model.baselines.streaming_session_knn import StreamingSessionKNNRecommender
from model.interactions import events_to_frame
from model.recommender import RecommendationRequest
from producers.simulator import simulate
from streamrec.notifications import decode_notification
from streamrec.session_store import SessionContext
from tests.pipeline_helpers import (
    expected_triggers,
    read_notifications_when_done,
    seed_catalogue,
    send,
    start_worker,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("streaming_model", ["session-cooccurrence", "session-knn-stream"])
def test_two_workers_share_partitions_and_notify_each_trigger_once(settings, streaming_model):
    settings = settings.model_copy(update={"streaming_model": streaming_model})
    world, events = simulate(2000, seed=31, tools=200)
    seed_catalogue(settings, world)
    triggers = expected_triggers(events, settings.trigger_every_nth_page_view)
    workers = [start_worker(settings, "worker-a"), start_worker(settings, "worker-b")]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(w.worker.consumer.assignment() for w in workers):
            time.sleep(0.2)
        assignments = [{tp.partition for tp in w.worker.consumer.assignment()} for w in workers]
        send(settings, events)
        records = read_notifications_when_done(settings, workers, len(events))
    finally:
        for w in workers:
            w.shutdown()

    assert all(assignments), f"both workers should own partitions: {assignments}"
    assert not assignments[0] & assignments[1]
    assert assignments[0] | assignments[1] == set(range(settings.events_partitions))
    assert all(w.worker.committed_records > 0 for w in workers)
    per_trigger = Counter(decode_notification(r.value).trigger_event_id for r in records)
    assert set(per_trigger) == triggers
    assert set(per_trigger.values()) == {1}
    products = [n for n in map(lambda r: decode_notification(r.value), records) if n.items[0].kind == "product"]
    assert products and {n.model_name for n in products} == {streaming_model}
    if streaming_model == "session-knn-stream":
        _assert_index_is_the_offline_one(settings, events)


def _assert_index_is_the_offline_one(settings, events) -> None:
    """Each worker wrote its own partitions' sessions; either one now scores with all of them, as offline."""
    offline = SessionKNNRecommender().fit(events_to_frame(events))
    shared = StreamingSessionKNNRecommender(redis.Redis.from_url(settings.redis_url), settings.key_prefix)
    items = sorted({e.item_id for e in events if getattr(e, "item_id", None)})
    queries = [RecommendationRequest(f"q{n}", 10, context=SessionContext(
        user_id=f"q{n}", session_id=f"query-{n}", recent_items=tuple(items[n * 3:n * 3 + 3]))) for n in range(15)]
    for request, got in zip(queries, shared.recommend_batch(queries), strict=True):
        assert [s.item_id for s in got] == [s.item_id for s in offline.recommend(request)]
