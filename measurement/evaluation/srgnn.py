"""The SR-GNN session benchmarks (Diginetica, YooChoose-1/64): every model of `streamrec evaluate srgnn`, one result.

Registry models are fitted on the training sessions and rank the full catalogue for every given test prefix
(`session_protocol.evaluate_next_item`); the session GRU trains epoch by epoch on the same files
(`srgnn_session_gru`). Both give `MetricRow`s (fractions: 0.5073 = 50.73 %), beside the published table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from measurement.evaluation import session_protocol
from measurement.evaluation.offline_models import build_models
from measurement.evaluation.srgnn_session_gru import MODEL as SESSION_GRU
from measurement.evaluation.srgnn_session_gru import GRUHeadline, SessionGRUTraining, run_session_gru
from measurement.report import EvaluationResult
from model.interactions import COLUMNS
from model.metrics import MetricRow

log = logging.getLogger(__name__)

# SR-GNN paper (Wu et al., AAAI 2019), Table 3: HR@20 (P@20) and MRR@20 in %.
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "diginetica": {
        "POP": (0.89, 0.20),
        "Item-KNN": (35.75, 11.57),
        "GRU4Rec": (29.45, 8.33),
        "NARM": (49.70, 16.17),
        "STAMP": (45.64, 14.32),
        "SR-GNN": (50.73, 17.59),
    },
    "yoochoose": {
        "POP": (6.71, 1.65),
        "Item-KNN": (51.60, 21.81),
        "GRU4Rec": (60.64, 22.89),
        "NARM": (68.32, 28.63),
        "STAMP": (68.74, 29.67),
        "SR-GNN": (70.57, 30.94),
    },
}


def training_frame(dataset: str, sessions: pd.DataFrame) -> pd.DataFrame:
    """The training sessions as the interactions frame every `fit` takes (page views; session = user)."""
    # No timestamps in these files; train sessions are in time order, so time follows (session rank, position).
    rank = sessions["session"].rank(method="dense").astype("int64")
    ts = pd.Timestamp("2016-01-01", tz="UTC") + pd.to_timedelta(rank * 600 + sessions["pos"], unit="s")
    return pd.DataFrame({
        "event_id": [f"{dataset}-{i}" for i in range(len(sessions))], "user_id": "s" + sessions["session"].astype(str),
        "session_id": "s" + sessions["session"].astype(str), "ts": ts, "event_type": "page_view", "kind": "product",
        "item_id": sessions["item"].astype(str),
    }).reindex(columns=COLUMNS)


def published_rows(dataset: str) -> list[MetricRow]:
    """The paper's figures as report rows (fractions, like ours)."""
    rows: list[MetricRow] = []
    for name, (hr, mrr) in PUBLISHED[dataset].items():
        rows += [MetricRow(f"{name} (published)", "next", "all", "HR", 20, hr / 100, 0),
                 MetricRow(f"{name} (published)", "next", "all", "MRR", 20, mrr / 100, 0)]
    return rows


def _fit_rows(seconds: dict[str, float]) -> list[MetricRow]:
    return [MetricRow(name, "all", "all", "fit_seconds", None, s, 0) for name, s in seconds.items()]


def run_srgnn_protocol(
    dataset: str, models: Sequence[str], max_prefixes: int | None = None, progress: bool = True,
    data_dir: Path | None = None, session_gru: SessionGRUTraining | None = None, model_dir: Path | None = None,
    on_update: Callable[[EvaluationResult], None] | None = None,
) -> EvaluationResult:
    """Registry models (and `session-gru`, trained into `model_dir`) on an SR-GNN benchmark, full catalogue.

    `on_update` gets the result so far after every model and every GRU epoch, so a cut-off run keeps a report.
    """
    from model.datasets.srgnn import dataset_dir, load_benchmark

    folder = dataset_dir(dataset, data_dir)
    sessions = pd.read_parquet(folder / "train_sessions.parquet").sort_values(["session", "pos"], kind="mergesort")
    test = pd.read_parquet(folder / "test_prefixes.parquet")
    train = training_frame(dataset, sessions)
    end_ms = int(train["ts"].max().timestamp() * 1000) + 1
    prefixes = [
        session_protocol.SessionPrefix(f"test-{i}", tuple(str(x) for x in prefix), str(target), end_ms)
        for i, (prefix, target) in enumerate(zip(test["prefix"], test["target"], strict=True))
    ]
    if max_prefixes is not None:
        prefixes = prefixes[:max_prefixes]
    info: dict[str, object] = {
        "dataset": f"{dataset} (SR-GNN preprocessing)", "train_sessions": int(sessions["session"].nunique()),
        "test_prefixes": len(prefixes), "figures": "fractions (0.5073 = 50.73 %), full catalogue, nothing excluded",
        "published": "SR-GNN paper (AAAI 2019), HR@20 / MRR@20",
    }
    ours: list[MetricRow] = []
    names: list[str] = []
    published = [f"{n} (published)" for n in PUBLISHED[dataset]]

    def result(extra: Sequence[MetricRow] = (), extra_names: Sequence[str] = ()) -> EvaluationResult:
        return EvaluationResult(title=f"Session-based benchmark: {dataset}", info=info,
                                rows=[*ours, *extra, *published_rows(dataset)],
                                models=[*names, *extra_names, *published])

    registry = [m for m in models if m != SESSION_GRU]
    built = build_models(registry, train)
    info["skipped"] = built.skipped
    try:
        for name, model in built.models.items():
            ours.extend(session_protocol.evaluate_next_item(
                name, model, prefixes, catalogue_size=int(sessions["item"].nunique()), progress=progress))
            ours.extend(_fit_rows({name: built.seconds[name]}))
            names.append(name)
            if on_update is not None:
                on_update(result())
    finally:
        built.close()
    if SESSION_GRU in models:
        training = session_gru or SessionGRUTraining()
        bench = load_benchmark(dataset, data_dir, max_len=training.max_len)
        if max_prefixes is not None:
            bench = replace(bench, test=bench.test.head(max_prefixes))
        info[SESSION_GRU] = (f"GRU + attention, prefixes capped at the {training.max_len} most recent items; "
                             "headline: the last epoch (or the best on validation); per-epoch test figures below")

        def on_epoch(headline: GRUHeadline) -> None:
            info[f"{SESSION_GRU} headline"] = headline.note
            if on_update is not None:
                on_update(result([*headline.rows, *headline.epochs], [SESSION_GRU]))

        headline = run_session_gru(bench, model_dir or Path("reports") / f"srgnn-{dataset}" / SESSION_GRU, training,
                                   PUBLISHED[dataset], on_epoch=on_epoch, progress=progress)
        ours.extend([*headline.rows, *headline.epochs])
        names.append(SESSION_GRU)
    return result()


def earlier_report(path: Path) -> EvaluationResult | None:
    """The report a previous run left in the folder, if any (read once, before this run rewrites it)."""
    return EvaluationResult.model_validate_json(path.read_text()) if path.exists() else None


def with_earlier_runs(result: EvaluationResult, before: EvaluationResult | None) -> EvaluationResult:
    """Add the models of an earlier run in the same folder that this run did not redo, so runs of single models
    (the baselines, then `-m session-gru`) build one table; only when both judged the same test prefixes."""
    if before is None:
        return result
    if before.title != result.title or before.info.get("test_prefixes") != result.info.get("test_prefixes"):
        return result
    kept = [m for m in before.models if m not in result.models]
    rows = [r for r in before.rows if r.model in kept]
    info = {**{k: v for k, v in before.info.items() if k not in result.info}, **result.info}
    return result.model_copy(update={"models": [*kept, *result.models], "rows": [*rows, *result.rows], "info": info})
