"""The report folder: a markdown table, a long-form CSV, JSON and the PNG plots, with the oracle comparison."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from measurement.report import EvaluationResult, write_report
from model.metrics import MetricRow


def result() -> EvaluationResult:
    rows = []
    for model, hr in (("popularity", 0.1), ("item-cosine", 0.3), ("oracle", 0.4)):
        for k in (1, 5, 10, 20):
            for metric in ("HR", "MRR", "NDCG", "precision", "recall"):
                rows.append(MetricRow(model, "next", "all", metric, k, hr * k / 20, 100))
            rows.append(MetricRow(model, "all", "all", "coverage", k, 0.01 * k, 100))
        rows.append(MetricRow(model, "engaged", "category", "wAUC", None, 0.6, 40))
    return EvaluationResult(title="t", models=["popularity", "item-cosine", "oracle"], rows=rows, info={"x": 1})


def test_report_folder_has_table_csv_json_and_plots(tmp_path):
    written = write_report(result(), tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert "| item-cosine |" in markdown and "HR@20" in markdown
    assert "Weighted AUC per offer type" in markdown
    csv = pd.read_csv(tmp_path / "metrics.csv")
    hr20 = csv[(csv.metric == "HR") & (csv.k == 20)].set_index("model")["value"]
    assert hr20["item-cosine"] == pytest.approx(0.3)
    assert json.loads((tmp_path / "report.json").read_text())["models"][0] == "popularity"
    for key in ("plot_next", "coverage_plot"):
        assert written[key].stat().st_size > 1000 and written[key].read_bytes()[:4] == b"\x89PNG"


def test_models_are_compared_with_the_oracle(tmp_path):
    write_report(result(), tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    line = next(row for row in markdown.splitlines() if row.startswith("| item-cosine |") and "0.7500" in row)
    assert "0.7500" in line  # HR@10 0.15 / oracle 0.2


def test_a_protocol_with_one_k_is_drawn_as_bars_per_model_and_several_ks_as_lines(tmp_path, monkeypatch):
    import measurement.report as report

    drawn: list[list[str]] = []
    real = report._plot_metric_bars
    monkeypatch.setattr(report, "_plot_metric_bars", lambda sub, models, target, path: (
        drawn.append(sorted(set(sub["model"]))), real(sub, models, target, path)))
    one_k = [MetricRow(m, "next", "all", metric, 20, v, 10) for m, v in (("a", 0.5), ("b", 0.3))
             for metric in ("HR", "MRR")]
    report.plot_metric_vs_k(report.rows_frame(one_k), ["a", "b"], "next", tmp_path / "one.png")
    assert drawn == [["a", "b"]] and (tmp_path / "one.png").stat().st_size > 0
    several = one_k + [MetricRow("a", "next", "all", "HR", 10, 0.4, 10)]
    report.plot_metric_vs_k(report.rows_frame(several), ["a", "b"], "next", tmp_path / "lines.png")
    assert len(drawn) == 1 and (tmp_path / "lines.png").stat().st_size > 0
