"""A topic replayed through the streaming input (the topic read once per model, never held) gives what the
in-memory replay of the same events gives: the same notifications, ranked lists, counts and report."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from consumers.replay.runner import replay_side_by_side
from consumers.replay.sources import read_topic_events, split_at
from consumers.replay.topic_input import TopicReplayInput
from measurement.evaluation.replay_evaluation import evaluate_replay
from producers.simulator import simulate
from streamrec.topics import TopicSpec, ensure_topics
from tests.pipeline_helpers import send as send_events

pytestmark = pytest.mark.integration

MODELS = ["popularity", "session-cooccurrence"]


def send(settings, events) -> None:
    """Produce into an events topic that keeps its records: their timestamps are event times years back, and
    7-day retention (the broker default) would delete them between the passes of one replay."""
    ensure_topics(settings, [TopicSpec(settings.events_topic, settings.events_partitions,
                                       settings.replication_factor, {"retention.ms": "-1"})])
    send_events(settings, events)


def _replay(data, settings, redis_client, out: Path):
    manifest = replay_side_by_side(MODELS, data, settings, out, redis_client, progress=False)
    return manifest, evaluate_replay(out)


def _same_replays(listed, streamed) -> None:
    (list_manifest, list_report, list_dir), (stream_manifest, stream_report, stream_dir) = listed, streamed
    for field in ("warmup_events", "window_events", "window_start", "window_end"):
        assert getattr(stream_manifest, field) == getattr(list_manifest, field), field
    assert [(r.name, r.triggers, r.notifications) for r in stream_manifest.models] == [
        (r.name, r.triggers, r.notifications) for r in list_manifest.models]
    for name in MODELS:
        expected = (list_dir / "notifications" / f"{name}.jsonl").read_text()
        assert expected and (stream_dir / "notifications" / f"{name}.jsonl").read_text() == expected, name
    timing = {"replay_events_per_s"}
    assert [r for r in stream_report.rows if r.metric not in timing] == [
        r for r in list_report.rows if r.metric not in timing]


def test_a_streamed_topic_replay_matches_the_in_memory_one(settings, redis_client, tmp_path, caplog):
    _, events = simulate(3000, seed=11)
    send(settings, events)  # keyed by user over the topic's partitions, each partition in event-time order
    since, until = events[1200].ts, events[2800].ts
    topic = settings.events_topic

    listed = split_at(read_topic_events(settings, topic, until=until, progress=False), "topic", since, until)
    streamed = TopicReplayInput(settings, topic, since, until, source="topic")
    results = [(*_replay(data, settings, redis_client, tmp_path / name), tmp_path / name)
               for name, data in (("listed", listed), ("streamed", streamed))]
    _same_replays(*results)
    assert results[1][0].window_events == sum(1 for e in events if since <= e.ts < until)
    assert "from memory" not in caplog.text  # streamed, not the fallback


def test_without_since_the_streamed_cut_is_the_in_memory_cut(settings, redis_client, tmp_path):
    _, events = simulate(2000, seed=12)
    send(settings, events)
    topic = settings.events_topic
    listed = split_at(read_topic_events(settings, topic, progress=False), "topic", None, None, warmup_share=0.4)
    streamed = TopicReplayInput(settings, topic, warmup_share=0.4, source="topic")
    results = [(*_replay(data, settings, redis_client, tmp_path / name), tmp_path / name)
               for name, data in (("listed", listed), ("streamed", streamed))]
    _same_replays(*results)
    assert streamed.since == listed.window_start


def test_a_topic_out_of_event_time_order_is_still_replayed_in_order(settings, redis_client, tmp_path, caplog):
    _, events = simulate(1500, seed=13)
    shuffled = list(events)
    random.Random(5).shuffle(shuffled)  # arrival order is not event-time order within a partition
    send(settings, shuffled)
    since = events[700].ts
    listed = split_at(read_topic_events(settings, progress=False), "topic", since, None)
    streamed = TopicReplayInput(settings, settings.events_topic, since, source="topic")
    results = [(*_replay(data, settings, redis_client, tmp_path / name), tmp_path / name)
               for name, data in (("listed", listed), ("streamed", streamed))]
    _same_replays(*results)
    assert "replaying it from memory" in caplog.text  # the merge alone could not put it in order
