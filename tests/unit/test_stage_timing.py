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
    assert 15 <= summary["sleep"]["longest_ms"] < 1000 * summary["sleep"]["seconds"]  # one call of three
    assert other.calls["inner"] == 1 and "outside any timer" not in times.seconds


def test_a_stage_counts_its_threads_cpu_apart_from_its_wall_time_so_waiting_shows():
    times = StageTimes()
    with times.stage("waits"):
        time.sleep(0.05)  # a Redis round trip, say: wall time, no CPU
    with times.stage("computes"):
        deadline = time.thread_time() + 0.03
        while time.thread_time() < deadline:
            pass
    summary = times.summary(events=1)
    assert summary["waits"]["ms_per_call"] >= 50 > 10 > summary["waits"]["cpu_ms_per_call"]
    assert summary["computes"]["cpu_ms_per_call"] >= 30
    assert summary["computes"]["cpu_ms_per_call"] <= summary["computes"]["ms_per_call"] + 1


def test_a_worker_writes_where_its_batches_time_went_when_it_stops(tmp_path):
    from consumers.worker.recommendation_pipeline import RecommendationPipeline
    from consumers.worker.worker import RecommendationWorker
    from streamrec.settings import Settings
    from tests.fake_kafka import FakeConsumer, FakeProducer

    class Source:
        class Served:
            name = "session-knn-stream"

        def current(self):
            raise AssertionError("stopping must not check for a newer model")

        served = Served()

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
    assert 10 < report["peak_rss_mb"] < 100_000  # this test process's peak, in MB (not kB, not bytes)


def test_the_bench_writes_a_workers_stages_as_a_table_with_each_loop_stages_share(tmp_path):
    from measurement.benchmarks.pipeline_benchmark import show_stages

    times = StageTimes()
    times.seconds.update({"poll": 1.0, "recommend": 3.0, "recommend: ranker": 2.0})
    times.calls.update({"poll": 10, "recommend": 10, "recommend: ranker": 10})
    times.write(tmp_path / "stages-alo-0.json", events=1000, served="hybrid")
    show_stages(tmp_path / "stages-alo-0.json", tmp_path)
    table = json.loads((tmp_path / "stages-alo-0-table.json").read_text())
    rows = table["rows"]
    assert rows["recommend"]["share"] == 75.0 and rows["poll"]["share"] == 25.0  # of the loop: 1 + 3 seconds
    assert rows["recommend: ranker"]["share"] == 50.0  # a part of recommend, not a fourth stage of the loop
    assert rows["recommend: ranker"]["per call"] == 200.0 and rows["poll"]["per event"] == 1000.0
    assert table["info"]["served model"] == "hybrid" and table["info"]["worker peak RSS"].endswith(" MB")
    assert "| stage | seconds (s) | calls |" in (tmp_path / "stages-alo-0-table.md").read_text()


def test_worker_and_bench_refuse_a_model_that_does_not_learn_from_the_stream_alike():
    import pytest
    import typer
    from typer.testing import CliRunner

    from cli import app
    from cli.pipeline import checked_streaming_model

    assert checked_streaming_model("session-knn-stream") == "session-knn-stream"
    with pytest.raises(typer.BadParameter, match="streamrec train --model hybrid --out DIR"):
        checked_streaming_model("hybrid")
    for command in (["worker", "--model", "hybrid"], ["bench", "pipeline", "--model", "hybrid"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and "does not learn from the stream" in result.output, command
