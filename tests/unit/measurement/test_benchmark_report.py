"""Benchmark tables through the one report writer: units in the headers, the floor beside ours, md/csv/json/png."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from measurement.benchmarks.group_benchmark import GroupTiming, group_result
from measurement.benchmarks.latency import latency_figures
from measurement.benchmarks.pipeline_benchmark import PhaseResult, pipeline_result
from measurement.benchmarks.push_benchmark import Measurement, push_result
from measurement.report import render_markdown, write_report
from streamrec.settings import Settings


def phases() -> list[PhaseResult]:
    return [PhaseResult("broker floor (2 hops)", 100, 100, 100, 0.5, [float(i) for i in range(1, 101)]),
            PhaseResult("pipeline (1 worker, at-least-once)", 100, 40, 40, 0.8, [3.0 * i for i in range(1, 41)])]


def test_pipeline_table_keeps_the_figures_and_reads_p99_against_the_floor(tmp_path):
    result = pipeline_result(phases(), 2000.0)
    written = write_report(result, tmp_path, "bench")
    csv = pd.read_csv(written["csv"]).set_index("phase")
    assert csv.loc["broker floor (2 hops)", "throughput (events/s)"] == pytest.approx(200.0)
    assert csv.loc["pipeline (1 worker, at-least-once)", "p99 (ms)"] == pytest.approx(round(
        latency_figures([3.0 * i for i in range(1, 41)])["p99"], 2))
    ratio = latency_figures([3.0 * i for i in range(1, 41)])["p99"] / latency_figures(range(1, 101))["p99"]
    markdown = written["md"].read_text()
    assert f"pipeline (1 worker, at-least-once): p99 / floor p99 = {ratio:.2f}" in markdown
    assert "| phase | events | expected | received | throughput (events/s) | p50 (ms) |" in markdown
    saved = json.loads(written["json"].read_text())
    assert saved["floor"] == "broker floor (2 hops)" and "samples" not in saved
    assert written["png"].read_bytes()[:4] == b"\x89PNG"


def test_a_phase_without_arrivals_shows_empty_cells_and_no_ratio():
    empty = PhaseResult("pipeline (1 worker, exactly-once)", 100, 40, 0, 0.0, [])
    markdown = render_markdown(pipeline_result([*phases()[:1], empty], None))
    assert "exactly-once): p99" not in markdown
    assert "| pipeline (1 worker, exactly-once) | 100 | 40 | 0 | 0.0 |  |" in markdown


def test_push_and_group_tables_name_their_units(tmp_path):
    push = push_result([Measurement("ingest-1", [1.0, 2.0, 3.0], 1)])
    assert "| ingest-1 | 3 | 1 | 2.0 |" in render_markdown(push)
    group = group_result([GroupTiming("first member joins", [0.5, 1.25, 0.75])], "Apache Kafka", Settings())
    written = write_report(group, tmp_path, "group")
    assert "| first member joins | 0.75 | 1.25 | 3 |" in written["md"].read_text()
    assert "median (s)" in written["md"].read_text() and written["png"].stat().st_size > 1000


def test_the_bench_serves_the_chosen_model_and_its_table_names_it(tmp_path):
    from measurement.benchmarks.pipeline_benchmark import served_settings
    from model.serving import served_model_name

    base = Settings(model_dir=tmp_path / "none-saved", streaming_model="session-knn-stream")
    assert served_settings(base) == base  # unset: what `streamrec worker` serves under the same settings
    chosen = served_settings(base, "session-cooccurrence", tmp_path / "elsewhere")
    assert (chosen.streaming_model, chosen.model_dir) == ("session-cooccurrence", tmp_path / "elsewhere")
    assert base.streaming_model == "session-knn-stream"  # the caller's settings are not changed
    name = served_model_name(chosen)
    assert name == "session-cooccurrence"
    assert "**served model**: session-cooccurrence" in render_markdown(pipeline_result(phases(), 2000.0, name))
    assert "served model" not in render_markdown(pipeline_result(phases(), 2000.0))
