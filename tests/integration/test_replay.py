"""Replay drives the worker's pipeline over past events: no future leaks in, same input gives the same report,
live keys and topics stay untouched, and real timed sessions travel through Kafka end to end."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.replay.records import read_records
from consumers.replay.runner import replay_side_by_side
from consumers.replay.sources import read_topic_events, split_at
from consumers.replay.through_kafka import stage_events
from measurement.evaluation.replay_evaluation import evaluate_replay
from model.datasets import shared_data_dir
from producers.simulator import simulate
from streamrec.events import PageView, Purchase
from streamrec.session_store import SessionStore
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import read_topic, send

pytestmark = pytest.mark.integration

T0 = datetime(2024, 6, 1, tzinfo=UTC)
FUTURE = "future-item"


def planted_future_events() -> tuple[list, datetime]:
    """Warm-up views of p0..p39, then triggers; at `future_at` a burst makes FUTURE the top item and p1's neighbour."""
    events = []
    for u in range(8):
        for i in range(40):
            events.append(PageView(event_id=f"w{u}-{i}", user_id=f"w{u}", session_id=f"ws{u}", item_id=f"p{i}",
                                   ts=T0 + timedelta(seconds=u * 60 + i)))
    window_start = T0 + timedelta(minutes=10)
    for u in range(5):  # early triggers: before the future burst
        for i in range(3):
            events.append(PageView(event_id=f"a{u}-{i}", user_id=f"a{u}", session_id=f"as{u}", item_id=f"p{i}",
                                   ts=window_start + timedelta(seconds=u * 20 + i)))
    future_at = window_start + timedelta(minutes=30)
    for n in range(20):
        events.append(PageView(event_id=f"z-v{n}", user_id="z", session_id="zs", item_id="p1",
                               ts=future_at + timedelta(seconds=2 * n)))
        events.append(Purchase(event_id=f"z-b{n}", user_id=f"z{n}", session_id=f"zs{n}", item_id=FUTURE,
                               ts=future_at + timedelta(seconds=2 * n + 1)))
    late = future_at + timedelta(minutes=10)
    for u in range(3):  # late triggers: after it, a streaming model may and should know FUTURE
        events.append(PageView(event_id=f"b{u}", user_id=f"b{u}", session_id=f"bs{u}", item_id="p1",
                               ts=late + timedelta(seconds=u)))
    random.Random(3).shuffle(events)  # arrival order is not event-time order
    return events, window_start, future_at


def test_a_replay_cannot_recommend_from_its_future(settings, redis_client, tmp_path):
    events, window_start, future_at = planted_future_events()
    live = settings.model_copy(update={"trigger_every_nth_page_view": 1, "trigger_on_purchase": False})
    data = split_at(events, "planted", window_start, None)
    replay_side_by_side(["session-cooccurrence", "popularity"], data, live, tmp_path, redis_client, progress=False)

    streaming = list(read_records(tmp_path / "notifications" / "session-cooccurrence.jsonl"))
    before = [r for r in streaming if r.notification.trigger_ts < future_at]
    after = [r for r in streaming if r.notification.trigger_ts > future_at + timedelta(minutes=5)]
    assert len(before) >= 10 and len(after) == 3
    assert all(FUTURE not in r.ranked for r in before), "a trigger saw an event from its future"
    assert all(FUTURE in r.ranked for r in after)  # the streaming model does learn it once it happened
    offline = list(read_records(tmp_path / "notifications" / "popularity.jsonl"))
    assert offline and all(FUTURE not in r.ranked for r in offline)  # trained before the window only


def test_the_same_input_gives_the_same_report(settings, redis_client, tmp_path):
    world, events = simulate(3000, seed=5)
    data = split_at(events, "sim", None, None, warmup_share=0.5)
    reports = []
    for run in ("first", "second"):
        out = tmp_path / run
        replay_side_by_side(["popularity", "session-cooccurrence"], data, settings, out, redis_client, progress=False)
        reports.append((out, evaluate_replay(out, served="session-cooccurrence")))
    (first_dir, first), (second_dir, second) = reports
    runs = first.info["runs"]
    assert runs["session-cooccurrence"]["served"] is True and runs["popularity"]["served"] is False
    for name in ("popularity", "session-cooccurrence"):
        a = (first_dir / "notifications" / f"{name}.jsonl").read_text()
        assert a and a == (second_dir / "notifications" / f"{name}.jsonl").read_text()
    timing = {"replay_events_per_s"}
    assert [r for r in first.rows if r.metric not in timing] == [r for r in second.rows if r.metric not in timing]
    hr = {r.model: r.value for r in first.rows if (r.metric, r.k, r.target, r.slice) == ("HR", 20, "next", "all")}
    assert 0 < hr["popularity"] < 1 and 0 < hr["session-cooccurrence"] < 1


def _snapshot(client, prefix: str) -> dict[bytes, bytes]:
    return {key: client.dump(key) for key in client.scan_iter(match=f"{prefix}*", count=1000)}


def test_a_replay_leaves_live_keys_and_topics_untouched(settings, redis_client, tmp_path):
    world, events = simulate(1500, seed=9)
    ensure_topics(settings)
    send(settings, events)  # the live events topic holds the traffic the replay reads
    live_store = SessionStore(redis_client, settings)
    live_store.apply_batch(events[:200])  # live state that must not change
    before = _snapshot(redis_client, settings.key_prefix)
    assert before

    replayed = read_topic_events(settings, until=events[1200].ts, progress=False)
    assert {e.event_id for e in replayed} == {e.event_id for e in events if e.ts < events[1200].ts}
    data = split_at(replayed, "topic", events[600].ts, None)
    manifest = replay_side_by_side(["session-cooccurrence"], data, settings, tmp_path, redis_client,
                                   publish=True, progress=False)

    assert _snapshot(redis_client, settings.key_prefix) == before
    assert not list(redis_client.scan_iter(match=f"replay:{manifest.run_id}:*"))  # the replay cleaned up
    run = manifest.models[0]
    assert run.notifications > 20
    live_notes = read_topic(settings, settings.notifications_topic, done=lambda r: False, timeout_s=3)
    assert live_notes == []
    replay_notes = read_topic(settings, run.notifications_topic, done=lambda r: len(r) >= run.notifications,
                              timeout_s=30)
    assert len(replay_notes) == run.notifications


def _data_or_skip(folder: str) -> Path:
    path = shared_data_dir() / folder
    if not path.exists():
        pytest.skip(f"dataset folder {path} is absent (see ../shared/data/README.md)")
    return path


def _replay_through_kafka(settings, redis_client, tmp_path, events, window_start, models):
    topic = f"{settings.events_topic}.staged"
    stage_events(events, settings, topic, progress=False)
    read = read_topic_events(settings, topic, progress=False)
    assert len(read) == len(events)
    data = split_at(read, topic, window_start, None)
    manifest = replay_side_by_side(models, data, settings, tmp_path, redis_client, progress=False)
    return data, manifest, evaluate_replay(tmp_path)


@pytest.mark.data
def test_rees46_sessions_replay_through_kafka(settings, redis_client, tmp_path):
    from model.datasets import rees46

    events = rees46.load_events(_data_or_skip("rees46-slice") / "events.parquet")
    window_start = datetime(2019, 10, 1, 2, 0, tzinfo=UTC)
    data, manifest, result = _replay_through_kafka(settings, redis_client, tmp_path, events, window_start,
                                                   ["popularity", "session-cooccurrence"])
    assert data.window and all(e.ts >= window_start for e in data.window)
    assert all(run.notifications > 100 for run in manifest.models)
    auc = {(r.model, r.slice) for r in result.rows if r.metric == "wAUC"}
    assert ("session-cooccurrence", "category") in auc  # rees46 items carry categories: attribute offers scored


@pytest.mark.data
def test_yoochoose_sessions_replay_through_kafka(settings, redis_client, tmp_path):
    from consumers.replay.sources import read_file_events

    events, test_start = read_file_events(_data_or_skip("yoochoose-100k-sessionrec"), "yoochoose")
    events = [e for e in events if e.ts >= test_start - timedelta(days=1)]  # a day of warm-up keeps the test short
    _, manifest, result = _replay_through_kafka(settings, redis_client, tmp_path, events, test_start,
                                                ["session-cooccurrence"])
    run = manifest.models[0]
    assert run.window_events > 10_000 and run.notifications > 1000
    hr = [r.value for r in result.rows if (r.metric, r.k, r.target, r.slice) == ("HR", 20, "next", "all")]
    assert 0 < hr[0] < 1


def test_a_replay_retrains_at_the_cadence_and_each_model_sees_only_its_past(settings, redis_client, tmp_path):
    """Popularity retrained every 20 minutes of event time: the retrain after the burst offers FUTURE to the late
    triggers, and none before it does (a retrain reads only events older than the batch it precedes)."""
    events, window_start, future_at = planted_future_events()
    live = settings.model_copy(update={"trigger_every_nth_page_view": 1, "trigger_on_purchase": False})
    data = split_at(events, "planted", window_start, None)
    manifest = replay_side_by_side(["popularity"], data, live, tmp_path, redis_client, progress=False,
                                   retrain_every_s=20 * 60)
    assert manifest.models[0].retrains == 2
    records = list(read_records(tmp_path / "notifications" / "popularity.jsonl"))
    before = [r for r in records if r.notification.trigger_ts < future_at]
    after = [r for r in records if r.notification.trigger_ts > future_at + timedelta(minutes=5)]
    assert len(before) >= 10 and len(after) == 3
    assert all(FUTURE not in r.ranked for r in before)
    assert all(r.ranked[0] == FUTURE for r in after), [r.ranked[:5] for r in after]
