"""Poison messages land in the dead-letter topic with a reason, and the stream goes on."""

from __future__ import annotations

import json

import pytest

from consumers.worker.dead_letter import DeadLetter
from producers.simulator import simulate
from streamrec.events import encode_event
from streamrec.kafka_clients import make_producer
from streamrec.notifications import decode_notification
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import (
    expected_triggers,
    read_notifications_when_done,
    read_topic,
    seed_catalogue,
    start_worker,
)

pytestmark = pytest.mark.integration


def test_poison_messages_are_dead_lettered_and_the_stream_continues(settings):
    world, events = simulate(200, seed=5)
    seed_catalogue(settings, world)
    good_before, good_after = events[:100], events[100:]
    valid_page_view = json.loads(encode_event(next(e for e in events if e.type == "page_view")))
    poison = {
        b"not json {": "not JSON",
        json.dumps({**valid_page_view, "event_id": "bad-1", "user_id": 42, "ts": "yesterday"}).encode(): "user_id",
        json.dumps({**valid_page_view, "event_id": "bad-2", "type": "teleport"}).encode(): "unknown event type",
        json.dumps({**valid_page_view, "event_id": "bad-3", "page": "x" * 600_000}).encode(): "payload too large",
        json.dumps([1, 2, 3]).encode(): "JSON object",
    }
    ensure_topics(settings)
    producer = make_producer(settings, "poison-test", max_request_size=4_000_000)
    for event in good_before:
        producer.send(settings.events_topic, key=event.user_id.encode(), value=encode_event(event))
    for value in poison:
        producer.send(settings.events_topic, key=b"poison", value=value)
    for event in good_after:
        producer.send(settings.events_topic, key=event.user_id.encode(), value=encode_event(event))
    producer.flush()
    producer.close()

    running = start_worker(settings)
    try:
        letters = read_topic(settings, settings.dlq_topic, done=lambda recs: len(recs) >= len(poison), timeout_s=60)
        triggers = expected_triggers(events, settings.trigger_every_nth_page_view)
        notified = read_notifications_when_done(settings, [running], len(events) + len(poison))
    finally:
        running.shutdown()

    dead = [DeadLetter.model_validate_json(r.value) for r in letters]
    assert len(dead) == len(poison)
    by_original = {}
    for letter in dead:
        assert letter.source_topic == settings.events_topic and letter.source_offset >= 0
        assert letter.stage == "decode"
        original = letter.original()
        if letter.original_truncated:
            assert letter.original_size > len(original) and letter.original_size > 600_000
            original = next(v for v in poison if len(v) == letter.original_size)
        by_original[original] = letter.reason
    assert set(by_original) == set(poison)
    for value, expected_reason in poison.items():
        assert expected_reason in by_original[value], by_original[value]
    # The stream went on: triggers after the poison were notified too.
    notified_triggers = {decode_notification(r.value).trigger_event_id for r in notified}
    after_ids = {e.event_id for e in good_after} & triggers
    assert after_ids and after_ids <= notified_triggers
