"""An event that keeps failing in processing is dead-lettered alone; its batch-mates are still notified once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import redis

from consumers.worker.dead_letter import DeadLetter
from consumers.worker.recommendation_pipeline import RecommendationPipeline
from consumers.worker.worker import RecommendationWorker
from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.recommender import RecommendationRequest, ScoredItem, StaticRecommenderSource
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


def test_an_unappliable_price_is_dead_lettered_and_its_batch_mates_are_observed_once(settings, redis_client):
    """`price: Infinity` used to fail the session script midway: half-written, marked seen, never dead-lettered,
    and the retry saw its batch-mates as duplicates that the model then skipped."""
    from datetime import UTC, datetime, timedelta

    from streamrec.events import PageView, encode_event
    from tests.fake_kafka import FakeConsumer, FakeProducer, records

    t0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
    views = [PageView(event_id=f"pv{n}", user_id="u1", session_id="s1", ts=t0 + timedelta(seconds=n),
                      item_id=item, price=2.0) for n, item in enumerate("abcde")]
    bad = encode_event(views[2]).replace(b'"price":2.0', b'"price":Infinity').replace(b'"pv2"', b'"bad"')
    assert b"Infinity" in bad

    def run(values: list[bytes], prefix: str):
        namespace = settings.model_copy(update={"key_prefix": f"{settings.key_prefix}{prefix}:",
                                                "processing_retries": 1})
        model = SessionCooccurrenceRecommender(redis_client, namespace.key_prefix)
        pipeline = RecommendationPipeline(SessionStore(redis_client, namespace), StaticRecommenderSource(model),
                                          namespace)
        calls: list[str] = []
        producer = FakeProducer(calls)
        worker = RecommendationWorker(namespace, pipeline, FakeConsumer(calls), producer)
        worker.handle_batch(records(values))
        co = {k.decode().rsplit(":", 2)[-1]: dict(redis_client.zrange(k, 0, -1, withscores=True))
              for k in redis_client.scan_iter(match=f"{namespace.key_prefix}g:co:*")}
        return producer, co, SessionStore(redis_client, namespace).latest_context("u1")

    healthy = [encode_event(v) for v in views]
    _, clean_co, clean_context = run(healthy[:2] + healthy[3:], "clean")
    producer, co, context = run(healthy[:2] + [bad] + healthy[3:], "bad")
    letters = [DeadLetter.model_validate_json(v) for topic, v in producer.sent if topic == settings.dlq_topic]
    assert len(letters) == 1 and letters[0].stage in {"decode", "process"}
    assert letters[0].source_offset == 12
    assert co == clean_co, "the healthy events must be observed exactly as without the bad one"
    assert context.page_views == clean_context.page_views == 4
    assert context.price_mean == clean_context.price_mean == 2.0  # the bad event left nothing half-written
