"""An event that keeps failing in processing is dead-lettered alone; its batch-mates are still notified once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import redis

from consumers.dead_letter import DeadLetter
from consumers.recommendation_pipeline import RecommendationPipeline, StaticRecommenderSource
from consumers.worker import RecommendationWorker
from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.recommender import RecommendationRequest, ScoredItem
from producers.simulator import simulate
from streamrec.events import parse_event
from streamrec.kafka_clients import make_consumer, make_producer
from streamrec.notifications import decode_notification
from streamrec.session_store import SessionStore
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import RunningWorker, expected_triggers, read_topic, seed_catalogue, send

pytestmark = pytest.mark.integration


class BrokenForOneUser(SessionCooccurrenceRecommender):
    """The baseline, except that it raises for one user: a bug that only some input hits."""

    broken_user = "u00003"

    def recommend_batch(self, requests: list[RecommendationRequest]) -> list[list[ScoredItem]]:
        if any(r.user_id == self.broken_user for r in requests):
            raise ValueError(f"cannot score user {self.broken_user}")
        return super().recommend_batch(requests)


def test_failing_events_are_isolated_and_dead_lettered(settings):
    world, events = simulate(800, seed=13, tools=200)
    seed_catalogue(settings, world)
    triggers = expected_triggers(events, settings.trigger_every_nth_page_view)
    broken = {e.event_id for e in events if e.user_id == BrokenForOneUser.broken_user} & triggers
    assert broken, "the broken user must have triggers for this test to mean anything"

    ensure_topics(settings)
    client = redis.Redis.from_url(settings.redis_url)
    pipeline = RecommendationPipeline(
        SessionStore(client, settings),
        StaticRecommenderSource(BrokenForOneUser(client, settings.key_prefix)),
        settings.model_copy(update={"processing_retries": 1}),
    )
    worker = RecommendationWorker(settings, pipeline, make_consumer(settings, settings.consumer_group, "w"),
                                  make_producer(settings, "w"))
    stop = threading.Event()
    running = RunningWorker(worker, threading.Thread(target=worker.run, args=(stop,), daemon=True), stop)
    running.thread.start()
    try:
        send(settings, events)
        letters = read_topic(settings, settings.dlq_topic, done=lambda recs: len(recs) >= len(broken), timeout_s=60)
        notes = read_topic(settings, settings.notifications_topic,
                           done=lambda recs: worker.committed_records >= len(events)
                           and len(recs) >= pipeline.stats.notifications, timeout_s=60, settle_s=1.0)
    finally:
        running.shutdown()

    dead = [DeadLetter.model_validate_json(r.value) for r in letters]
    assert {d.stage for d in dead} == {"process"}
    assert all("cannot score user u00003" in d.reason for d in dead)
    dead_ids = {parse_event(d.original()).event_id for d in dead}
    assert dead_ids == broken
    per_trigger = Counter(decode_notification(r.value).trigger_event_id for r in notes)
    assert set(per_trigger) == triggers - broken
    assert set(per_trigger.values()) == {1}
