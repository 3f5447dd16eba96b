"""The stage timer: sums per stage, `timed` adds only to the active timer, the worker's report file."""

from __future__ import annotations

import json
import time

from streamrec.stage_timing import StageTimes, timed


def test_stages_sum_their_seconds_and_calls_and_nested_code_adds_to_the_active_timer_only():
    times, other = StageTimes(), StageTimes()
    with timed("outside any timer"):  # no timer active: nothing is recorded anywhere
        pass
    for _ in range(3):
        with times.stage("sleep"), times.active():
            time.sleep(0.01)
            with timed("inner"):
                time.sleep(0.005)
    with other.active(), timed("inner"):
        pass
    summary = times.summary(events=300)
    assert list(summary) == ["inner", "sleep"]  # first finished first
    assert summary["sleep"]["calls"] == 3 and summary["inner"]["calls"] == 3
    assert summary["sleep"]["seconds"] >= 0.045 > summary["inner"]["seconds"] >= 0.015
    assert summary["sleep"]["us_per_event"] == 1e6 * summary["sleep"]["seconds"] / 300
    assert other.calls["inner"] == 1 and "outside any timer" not in times.seconds


def test_a_worker_writes_where_its_batches_time_went_when_it_stops(tmp_path):
    from consumers.worker.recommendation_pipeline import RecommendationPipeline
    from consumers.worker.worker import RecommendationWorker
    from streamrec.settings import Settings
    from tests.fake_kafka import FakeConsumer, FakeProducer

    class Source:
        def current(self):
            class Served:
                name = "session-knn-stream"
            return Served()

    calls: list[str] = []
    settings = Settings(stage_report=tmp_path / "stages.json")
    pipeline = RecommendationPipeline(None, Source(), settings)  # stopping reads its timer, stats and source only
    pipeline.stats.events = 40
    with pipeline.stages.stage("redis apply"):
        pass
    RecommendationWorker(settings, pipeline, FakeConsumer(calls), FakeProducer(calls)).close()
    report = json.loads((tmp_path / "stages.json").read_text())
    assert report["served"] == "session-knn-stream" and report["events"] == 40
    assert report["stages"]["redis apply"]["calls"] == 1
