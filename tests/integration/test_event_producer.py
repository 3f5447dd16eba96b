"""The SDK delivers keyed events to the real broker and fails clearly when no broker answers."""

from __future__ import annotations

import time

import pytest

from producers.event_producer import BrokerUnavailable, EventProducer
from streamrec.dev_stack import free_port
from streamrec.events import PageView, parse_event
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import read_topic

pytestmark = pytest.mark.integration


def test_events_are_delivered_keyed_by_user_with_event_time_as_timestamp(settings):
    ensure_topics(settings)
    delivered = []
    events = [PageView(user_id=f"u{i % 3}", session_id="s", item_id=f"p{i}") for i in range(30)]
    with EventProducer(settings, on_delivery=lambda e, err: delivered.append((e.event_id, err))) as producer:
        producer.emit_many(events)
    assert sorted(d[0] for d in delivered) == sorted(e.event_id for e in events)
    assert all(err is None for _, err in delivered)
    records = read_topic(settings, settings.events_topic, done=lambda recs: len(recs) >= 30, timeout_s=30)
    partitions_by_user = {}
    for record in records:
        event = parse_event(record.value)
        assert record.key == event.user_id.encode()
        assert record.timestamp == event.ts_ms
        partitions_by_user.setdefault(event.user_id, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions_by_user.values())  # one user, one partition: order kept


def test_unreachable_broker_gives_a_clear_error_quickly(settings):
    dead = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}",
                                       "kafka_bootstrap_timeout_ms": 2000})
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="no Kafka broker answers at 127.0.0.1"):
        EventProducer(dead)
    assert time.monotonic() - started < 20
