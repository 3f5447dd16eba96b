"""`restore-state` rebuilds what an empty Redis lost, from the events and notifications topics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from kafka.structs import OffsetAndTimestamp

from consumers.worker.recommendation_pipeline import RecommendationPipeline
from consumers.worker.state_restore import parse_since, restore_state
from consumers.worker.topic_window import TopicWindowReader
from model.recommender import StaticRecommenderSource
from producers.event_producer import EventProducer
from streamrec.events import AddToCart, Event, PageView, Purchase, SessionStart, TaskCompleted
from streamrec.kafka_clients import make_consumer, make_producer
from streamrec.notifications import encode_notification
from streamrec.session_store import FilterQuery, SessionStore
from streamrec.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration
USERS = [f"u{n}" for n in range(12)]


def _traffic(now: datetime) -> list[Event]:
    """Per user: two sessions of page views, a cart, a purchase and a tool use, all within the last hour."""
    events: list[Event] = []
    start = now - timedelta(minutes=40)
    for u, user in enumerate(USERS):
        for s in range(2):
            session = f"{user}-s{s}"
            t = start + timedelta(minutes=15 * s, seconds=u)
            for v in range(7):
                item = f"p{(u + v * 3 + s) % 17}"
                events.append(PageView(event_id=f"{session}-pv{v}", user_id=user, session_id=session,
                                       ts=t + timedelta(seconds=5 * v), item_id=item, category=f"c{v % 3}",
                                       price=1.5 * v + u))
            t += timedelta(seconds=40)
            events.append(AddToCart(event_id=f"{session}-cart", user_id=user, session_id=session, ts=t,
                                    item_id=f"p{(u + s) % 17}", price=3.0))
            events.append(Purchase(event_id=f"{session}-buy", user_id=user, session_id=session,
                                   ts=t + timedelta(seconds=5), item_id=f"p{(u + s) % 17}", price=3.0))
            events.append(TaskCompleted(event_id=f"{session}-task", user_id=user, session_id=session,
                                        ts=t + timedelta(seconds=9), tool_id=f"t{(u + s) % 4}"))
    return sorted(events, key=lambda e: e.ts)


def _snapshot(store: SessionStore, events: list[Event], users: list[str]) -> dict:
    """Everything a user of the store notices: contexts, consumption, filters at each event, model counts."""
    filters = store.filters_batch([FilterQuery.for_event(e) for e in events if e.user_id in users])
    model_keys = sorted(k.decode() for k in store.redis.scan_iter(match=store.keys.global_key("*"), count=1000))
    return {
        "latest": {u: store.latest_context(u) for u in users},
        "consumed": {u: store.consumed(u) for u in users},
        "filters": filters,
        "model": {
            k[len(store.settings.key_prefix):]: {
                m.decode(): round(s, 6) for m, s in store.redis.zrange(k, 0, -1, withscores=True)
            }
            for k in model_keys
        },
    }


def test_restore_rebuilds_the_store_from_the_log_and_a_second_run_changes_nothing(settings, redis_client):
    now = datetime.now(UTC)
    events = _traffic(now)
    # Older than --since (and, being session starts, no input to the streaming model).
    old = [SessionStart(event_id=f"old-{n}", user_id="old-user", session_id=f"old-s{n}",
                        ts=now - timedelta(hours=3, seconds=n)) for n in range(5)]
    ensure_topics(settings)

    # What the worker does: the pipeline applies events in batches, the notifications are published, then
    # confirmed in Redis. The streaming models (co-occurrence, tool transitions) learn from the same batches.
    from model.serving import streaming_model

    store = SessionStore(redis_client, settings)
    recommender = streaming_model(settings.model_copy(update={"streaming_model": "session-cooccurrence"}),
                                  redis_client)
    pipeline = RecommendationPipeline(store, StaticRecommenderSource(recommender), settings)
    producer = make_producer(settings, "test-worker")
    sent = 0
    for i in range(0, len(old + events), 37):
        notifications = pipeline.prepare((old + events)[i : i + 37])
        for n in notifications:
            producer.send(settings.notifications_topic, key=n.user_id.encode(), value=encode_notification(n))
        producer.flush()
        pipeline.confirm(notifications)
        sent += len(notifications)
    producer.close()
    assert sent >= len(USERS), "the traffic must have produced notifications to restore"
    with EventProducer(settings) as events_out:
        events_out.emit_many(old + events)
    raw = make_producer(settings, "test-garbage")
    raw.send(settings.events_topic, key=b"u0", value=b"{not json", timestamp_ms=int(now.timestamp() * 1000))
    raw.flush()
    raw.close()

    original = _snapshot(store, events, USERS)
    assert any(f.trigger_already_notified for f in original["filters"])
    assert any(f.recently_notified for f in original["filters"])
    assert store.delete_namespace() > 0  # Redis came back empty
    assert store.latest_context(USERS[0]) is None

    started = time.monotonic()
    summary = restore_state(settings, parse_since("1h"), progress=False)
    seconds = time.monotonic() - started
    print(f"restore: {summary.events_read} events in {summary.seconds:.2f} s ({summary.events_per_s:.0f}/s), "
          f"{seconds:.2f} s with notifications; windows: {summary.events_window}")
    assert summary.events_applied == len(events)
    assert summary.events_undecodable == 1
    assert summary.events_window.skipped_older == len(old)
    assert summary.notifications_recorded == sent and summary.notifications_already_recorded == 0
    assert _snapshot(store, events, USERS) == original
    assert store.latest_context("old-user") is None  # older than --since: not restored

    again = restore_state(settings, parse_since("1h"), progress=False)
    assert again.events_applied == 0 and again.events_duplicate == len(events)
    assert again.notifications_recorded == 0 and again.notifications_already_recorded == sent
    assert _snapshot(store, events, USERS) == original


def test_since_accepts_durations_and_iso_times():
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d", now) == now - timedelta(days=1)
    assert parse_since("2026-05-01T10:00:00", now) == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_since("2026-05-01T10:00:00+02:00", now) == datetime(2026, 5, 1, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="since"):
        parse_since("yesterday", now)



class _MisreportingBroker:
    """The consumer as some Tansu runs answered: offset 0 and timestamp -1 for any time, and for the end one
    past the first offset of the last batch (here: 1 for every partition)."""

    def __init__(self, consumer) -> None:
        self._consumer = consumer

    def __getattr__(self, name):
        return getattr(self._consumer, name)

    def offsets_for_times(self, timestamps):
        return {tp: OffsetAndTimestamp(0, -1, 0) for tp in timestamps}

    def end_offsets(self, partitions):
        return dict.fromkeys(partitions, 1)


@pytest.mark.parametrize("broker", ["as it answers", "misreporting offsets"])
def test_the_reader_gets_exactly_the_window_whatever_the_broker_says_about_offsets(settings, broker):
    topic = settings.events_topic
    ensure_topics(settings, [TopicSpec(topic, 2, 1, {})])
    now_ms = int(time.time() * 1000)
    producer = make_producer(settings, "test-batches", linger_ms=200, batch_size=1_000_000)
    for n in range(300):  # few large batches; the first 100 are older than `since`
        ts = now_ms - 3_600_000 + n if n < 100 else now_ms - 60_000 + n
        producer.send(topic, key=f"k{n % 7}".encode(), value=str(n).encode(), timestamp_ms=ts)
    producer.flush()
    producer.close()
    consumer = make_consumer(settings, None, "test-window")
    wrapped = consumer if broker == "as it answers" else _MisreportingBroker(consumer)
    reader = TopicWindowReader(wrapped, topic, since_ms=now_ms - 600_000, fence_ms=now_ms + 300_000, idle_s=1)
    try:
        values = sorted(int(r.value) for batch in reader.batches() for r in batch)
    finally:
        consumer.close()
    assert values == list(range(100, 300))
    if broker == "misreporting offsets":
        assert (reader.stats.start_mode, reader.stats.end_mode) == ("beginning", "idle")
        assert reader.stats.skipped_older == 100
