"""The SR-GNN protocol's one result: published rows as fractions, and runs of single models building one table."""

from __future__ import annotations

import pandas as pd
import pytest

from measurement.evaluation.srgnn import PUBLISHED, published_rows, training_frame, with_earlier_runs
from measurement.report import EvaluationResult
from model.metrics import MetricRow, metric_value


def result(models: list[str], hr: float, prefixes: int = 500) -> EvaluationResult:
    rows = [MetricRow(m, "next", "all", "HR", 20, hr, prefixes) for m in models] + published_rows("diginetica")
    return EvaluationResult(title="Session-based benchmark: diginetica", models=[*models, "SR-GNN (published)"],
                            rows=rows, info={"test_prefixes": prefixes})


def test_published_figures_are_fractions_like_ours():
    rows = published_rows("diginetica")
    assert metric_value([r for r in rows if r.model == "SR-GNN (published)"], "HR", 20) == pytest.approx(0.5073)
    assert len(rows) == 2 * len(PUBLISHED["diginetica"])


def test_an_earlier_run_keeps_the_models_this_run_did_not_redo():
    earlier = result(["popularity", "session-knn"], 0.1)
    merged = with_earlier_runs(result(["session-knn", "session-gru"], 0.5), earlier)
    assert merged.models[:3] == ["popularity", "session-knn", "session-gru"]
    knn = [r for r in merged.rows if r.model == "session-knn"]
    assert [r.value for r in knn] == [0.5]  # this run's figure replaces the earlier one
    assert sum(r.model == "SR-GNN (published)" for r in merged.rows) == 2  # published rows once


def test_runs_on_other_test_prefixes_are_not_merged():
    merged = with_earlier_runs(result(["session-gru"], 0.5), result(["popularity"], 0.1, prefixes=100))
    assert "popularity" not in merged.models


def test_training_sessions_become_page_views_in_time_order():
    sessions = pd.DataFrame({"session": [3, 3, 7], "pos": [0, 1, 0], "item": [5, 6, 5]})
    frame = training_frame("diginetica", sessions)
    assert list(frame["item_id"]) == ["5", "6", "5"] and frame["ts"].is_monotonic_increasing
    assert set(frame["event_type"]) == {"page_view"} and list(frame["session_id"]) == ["s3", "s3", "s7"]
