"""The one report writer: an `EvaluationResult` (models judged) or a `BenchmarkResult` (things timed) as markdown,
CSV, JSON and PNG plots, so every figure people compare is read from the same kind of files."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field

from model.metrics import MetricRow

RANK_METRICS = ("HR", "MRR", "NDCG", "precision", "recall")
ORACLE = "oracle"


class EvaluationResult(BaseModel):
    """Everything a report shows; `rows` is the long-form table, `info` the run's facts."""

    title: str
    models: list[str]
    rows: list[MetricRow]
    info: dict[str, object]


class BenchmarkResult(BaseModel):
    """A benchmark's table: named rows, each column with its unit, and the floor row ours are read against.

    `digits` is how many decimals a column shows (the precision the benchmark measures to); `samples` (raw
    timings per row, not saved in the JSON) draw a CDF, else the PNG is a bar chart per unit.
    """

    title: str
    row_label: str  # what a row is: phase, measurement, stage, moment, index
    units: dict[str, str]  # column -> unit ("count" columns are not plotted), in column order
    rows: dict[str, dict[str, float | int | None]]  # row name -> column -> value
    digits: dict[str, int] = Field(default_factory=dict)
    floor: str | None = None  # the row that is the floor (the broker's two hops), if any
    compare: list[str] = Field(default_factory=list)  # columns shown as ours / the floor's
    info: dict[str, object] = Field(default_factory=dict)
    samples: dict[str, list[float]] = Field(default_factory=dict, exclude=True)
    samples_label: str = "latency (ms)"

    def header(self, column: str) -> str:
        unit = self.units[column]
        return column if unit in ("", "count") else f"{column} ({unit})"

    def cell(self, column: str, value: float | int | None) -> object:
        """A value at its column's precision (None and NaN stay empty)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, int) or self.units[column] == "count":
            return int(value)
        return round(float(value), self.digits.get(column, 2))

    def table(self) -> pd.DataFrame:
        """The rows at their precision, one column per figure, headers with units."""
        body = [{self.row_label: name, **{self.header(c): self.cell(c, row.get(c)) for c in self.units}}
                for name, row in self.rows.items()]
        return pd.DataFrame(body, columns=[self.row_label, *(self.header(c) for c in self.units)])

    def floor_lines(self) -> list[str]:
        """`<row>: <column> / floor <column> = ratio` for every row beside the floor, unrounded values."""
        if self.floor is None or self.floor not in self.rows:
            return []
        lines = []
        for name, row in self.rows.items():
            for column in self.compare:
                ours, floor = row.get(column), self.rows[self.floor].get(column)
                if name == self.floor or ours is None or floor is None:
                    continue
                if not (math.isnan(float(ours)) or math.isnan(float(floor)) or float(floor) == 0.0):
                    lines.append(f"{name}: {column} / floor {column} = {float(ours) / float(floor):.2f}")
        return lines


def rows_frame(rows: Sequence[MetricRow]) -> pd.DataFrame:
    return pd.DataFrame([vars(r) for r in rows], columns=["model", "target", "slice", "metric", "k", "value", "n"])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _wide(frame: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """model x "metric@k" columns, in the metric order of RANK_METRICS and increasing k."""
    frame = frame.assign(column=[f"{m}@{int(k)}" if k == k and k is not None else m
                                 for m, k in zip(frame["metric"], frame["k"], strict=True)])
    order = {m: i for i, m in enumerate(RANK_METRICS)}
    frame = frame.assign(sort=[(order.get(m, 99), 0 if k != k or k is None else k)
                               for m, k in zip(frame["metric"], frame["k"], strict=True)])
    columns = list(dict.fromkeys(frame.sort_values("sort", kind="mergesort")["column"]))
    wide = frame.pivot_table(index="model", columns="column", values="value", aggfunc="first")
    wide = wide.reindex(index=[m for m in models if m in wide.index], columns=columns)
    return wide.reset_index()


def _info_lines(info: dict[str, object]) -> list[str]:
    return [f"- **{key}**: {json.dumps(value, default=str) if isinstance(value, dict | list) else value}"
            for key, value in info.items()]


def _cell_text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def render_markdown(result: EvaluationResult | BenchmarkResult) -> str:
    """The report as markdown: the run's facts, then the tables."""
    if isinstance(result, BenchmarkResult):
        table = result.table()
        cells = pd.DataFrame([[_cell_text(v) for v in row] for row in table.itertuples(index=False)],
                             columns=table.columns)
        parts = [f"# {result.title}", "", *(_info_lines(result.info) + [""] if result.info else []),
                 markdown_table(cells)]
        floor = result.floor_lines()
        return "\n".join(parts + (["", *floor] if floor else [])) + "\n"
    frame = rows_frame(result.rows)
    parts = [f"# {result.title}", "", *_info_lines(result.info)]
    ranked = frame[frame["metric"].isin(RANK_METRICS)]
    for target in dict.fromkeys(ranked["target"]):
        sub = ranked[(ranked["target"] == target) & (ranked["slice"] == "all")]
        if target == "next":  # one relevant item: precision@k = HR@k / k and recall@k = HR@k (both in the CSV)
            sub = sub[sub["metric"].isin(["HR", "MRR", "NDCG"])]
        n = sub.groupby("model")["n"].max().to_dict()
        table = markdown_table(_wide(sub, result.models))
        parts += ["", f"## Target: {target} (lists judged per model: {n})", "", table]
    others = frame[~frame["metric"].isin(RANK_METRICS) & (frame["metric"] != "wAUC")]
    if not others.empty:
        table = markdown_table(_wide(others, result.models))
        parts += ["", "## Coverage, popularity bias, volume, throughput", "", table]
    auc = frame[frame["metric"] == "wAUC"]
    if not auc.empty:
        table = auc.pivot_table(index="model", columns="slice", values="value", aggfunc="first").reset_index()
        parts += ["", "## Weighted AUC per offer type (target: engaged)", "", markdown_table(table)]
    slices = ranked[(ranked["slice"] != "all") & (ranked["metric"].isin(["HR", "MRR"]))]
    if not slices.empty:
        k = int(slices["k"].max())
        sub = slices[slices["k"] == k]
        table = sub.pivot_table(index=["target", "slice", "model"], columns="metric", values="value", aggfunc="first")
        table = table.join(sub.groupby(["target", "slice", "model"])["n"].max()).reset_index()
        table.columns = [f"{c}@{k}" if c in ("HR", "MRR") else c for c in table.columns]
        parts += ["", f"## Slices (at k={k})", "", markdown_table(table)]
    oracle = oracle_share(frame, result.models)
    if oracle is not None:
        parts += ["", "## How close each model comes to the oracle (model / oracle)", "", markdown_table(oracle)]
    return "\n".join(parts) + "\n"


def oracle_share(frame: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame | None:
    """Each model's HR@10 and NDCG@10 as a share of the oracle's, per target (None without an oracle)."""
    if ORACLE not in models:
        return None
    sub = frame[(frame["slice"] == "all") & (frame["metric"].isin(["HR", "NDCG"])) & (frame["k"] == 10)]
    rows = []
    for model in models:
        row: dict[str, object] = {"model": model}
        for (target, metric), group in sub.groupby(["target", "metric"]):
            values = group.set_index("model")["value"]
            if model in values and values.get(ORACLE, 0) > 0:
                row[f"{target} {metric}@10"] = values[model] / values[ORACLE]
        rows.append(row)
    return pd.DataFrame(rows)


def plot_metric_vs_k(frame: pd.DataFrame, models: Sequence[str], target: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = frame[(frame["target"] == target) & (frame["slice"] == "all") & frame["metric"].isin(RANK_METRICS)]
    if sub["k"].nunique() == 1:
        _plot_metric_bars(sub, models, target, path)
        return
    fig, axes = plt.subplots(1, len(RANK_METRICS), figsize=(4 * len(RANK_METRICS), 3.6))
    for ax, metric in zip(axes, RANK_METRICS, strict=True):
        for model in models:
            line = sub[(sub["metric"] == metric) & (sub["model"] == model)].sort_values("k")
            if not line.empty:
                ax.plot(line["k"], line["value"], marker="o", label=model)
        ax.set_title(f"{metric}@k ({target})")
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_metric_bars(sub: pd.DataFrame, models: Sequence[str], target: str, path: Path) -> None:
    """One k for every model (a protocol that reports HR@20 / MRR@20 only): bars per model, one axis per metric."""
    import matplotlib.pyplot as plt

    k = int(sub["k"].iloc[0])
    metrics = [m for m in RANK_METRICS if m in set(sub["metric"])]
    shown = [m for m in models if m in set(sub["model"])]
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.0 + 0.55 * len(shown) * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = sub[sub["metric"] == metric].set_index("model")["value"]
        ax.bar(range(len(shown)), [float(values.get(m, 0.0)) for m in shown], color=[f"C{i % 10}" for i in
                                                                                    range(len(shown))])
        ax.set_xticks(range(len(shown)), shown, rotation=40, ha="right", fontsize=7)
        ax.set_title(f"{metric}@{k} ({target})")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_coverage_vs_accuracy(frame: pd.DataFrame, models: Sequence[str], target: str, k: int, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cov = frame[(frame["metric"] == "coverage") & (frame["k"] == k)].set_index("model")["value"]
    acc = frame[(frame["target"] == target) & (frame["slice"] == "all") & (frame["metric"] == "HR")
                & (frame["k"] == k)].set_index("model")["value"]
    common = [m for m in models if m in cov.index and m in acc.index]
    if not common:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for model in common:
        ax.scatter(cov[model], acc[model], s=40)
        ax.annotate(model, (cov[model], acc[model]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(f"catalogue coverage@{k}")
    ax.set_ylabel(f"HR@{k} ({target})")
    ax.set_title("coverage vs accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_benchmark(result: BenchmarkResult, path: Path) -> None:
    """A CDF of the raw timings per row (log scale) when there are samples, else bars per row, one axis per unit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if result.samples:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for name, values in result.samples.items():
            if values:
                ordered = sorted(values)
                shares = [(i + 1) / len(ordered) for i in range(len(ordered))]
                ax.plot(ordered, shares, label=f"{name} (n={len(ordered)})")
        ax.set_xscale("log")
        ax.set_xlabel(f"{result.samples_label}, log scale")
        ax.set_ylabel("fraction of records")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        axes = [ax]
    else:
        by_unit: dict[str, list[str]] = {}
        for column, unit in result.units.items():
            if unit != "count":
                by_unit.setdefault(unit, []).append(column)
        fig, axes = plt.subplots(1, max(1, len(by_unit)), figsize=(5 + 4 * len(by_unit), 4.5), squeeze=False)
        axes = list(axes[0])
        names = list(result.rows)
        for ax, (unit, columns) in zip(axes, by_unit.items(), strict=False):
            width = 0.8 / len(columns)
            for i, column in enumerate(columns):
                values = [float(result.rows[n].get(column) or 0.0) for n in names]
                ax.bar([x + (i - (len(columns) - 1) / 2) * width for x in range(len(names))], values, width,
                       label=column)
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel(unit)
            ax.legend(fontsize=8)
            ax.grid(axis="y", alpha=0.3)
    axes[0].set_title(result.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(result: EvaluationResult | BenchmarkResult, out_dir: Path, stem: str = "report") -> dict[str, Path]:
    """An evaluation: report.md, metrics.csv (long form), report.json and the PNG plots. A benchmark:
    <stem>.md, <stem>.csv, <stem>.json and <stem>.png. Returns what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(result, BenchmarkResult):
        paths = {kind: out_dir / f"{stem}.{kind}" for kind in ("md", "csv", "json", "png")}
        paths["md"].write_text(render_markdown(result))
        result.table().to_csv(paths["csv"], index=False)
        paths["json"].write_text(result.model_dump_json(indent=1))
        plot_benchmark(result, paths["png"])
        return paths
    frame = rows_frame(result.rows)
    written = {
        "markdown": out_dir / "report.md",
        "csv": out_dir / "metrics.csv",
        "json": out_dir / "report.json",
    }
    written["markdown"].write_text(render_markdown(result))
    frame.to_csv(written["csv"], index=False)
    written["json"].write_text(result.model_dump_json(indent=1))
    ranked = frame[frame["metric"].isin(RANK_METRICS)]
    for target in dict.fromkeys(ranked["target"]):
        path = out_dir / f"metric_vs_k_{target}.png"
        plot_metric_vs_k(frame, result.models, target, path)
        written[f"plot_{target}"] = path
    if not ranked.empty:
        target = ranked["target"].iloc[0]
        k = int(ranked["k"].max())
        path = out_dir / "coverage_vs_accuracy.png"
        if plot_coverage_vs_accuracy(frame, result.models, target, k, path):
            written["coverage_plot"] = path
    return written
