"""The offline protocols end to end on the shared datasets: load, split, build every model, score, one result."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from measurement.evaluation import session_protocol
from measurement.evaluation.holdout import temporal_holdout
from measurement.evaluation.offline_models import build_models
from measurement.report import EvaluationResult
from model.holdout_scoring import held_out_history, score_users
from model.metrics import KS, MetricRow

log = logging.getLogger(__name__)


def _fit_rows(built) -> list[MetricRow]:
    return [MetricRow(name, "all", "all", "fit_seconds", None, s, 0) for name, s in built.seconds.items()]


def load_session_clicks(path: Path | None) -> pd.DataFrame:
    """(session_id, item_id, ts) from a session-rec TSV, a yoochoose folder, an event log, or yoochoose-100k."""
    from model.datasets import yoochoose

    if path is None or path.is_dir():
        folder = path or yoochoose.split_path("train_full").parent
        parts = [yoochoose.load_clicks(folder / yoochoose.SPLITS[s]) for s in ("train_full", "test")]
        return pd.concat(parts, ignore_index=True)
    if path.suffix == ".txt":
        return yoochoose.load_clicks(path)
    if path.suffix == ".parquet" and "user_session" in pd.read_parquet(path, columns=None).columns:
        raw = pd.read_parquet(path)
        return pd.DataFrame({"session_id": raw["user_session"].astype(str), "item_id": raw["product_id"].astype(str),
                             "ts": raw["event_time"]})
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    frame = frame.dropna(subset=["item_id"])
    return pd.DataFrame({"session_id": frame["session_id"].astype(str), "item_id": frame["item_id"].astype(str),
                         "ts": pd.to_datetime(frame["ts"], utc=True)})


def run_session_protocol(
    path: Path | None, models: Sequence[str], days: float = 1.0, max_prefixes: int | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Preprocess, split, fit every model on train, score every test prefix's next item."""
    split = session_protocol.prepare(load_session_clicks(path), days)
    prefixes = session_protocol.test_prefixes(split.test)
    if max_prefixes is not None:
        prefixes = prefixes[:max_prefixes]
    train = session_protocol.train_interactions(split.train)
    catalogue = split.train["item_id"].nunique()
    built = build_models(models, train)
    rows: list[MetricRow] = []
    try:
        for name, model in built.models.items():
            rows += session_protocol.evaluate_next_item(name, model, prefixes, catalogue_size=catalogue,
                                                        progress=progress)
    finally:
        built.close()
    info = {
        "protocol": "session-based next item (items >= 5, sessions >= 2 until stable, repeats collapsed)",
        "source": str(path or "yoochoose-100k-sessionrec (train_full + test)"),
        "test": f"sessions starting in the last {days:g} day(s)",
        "train_sessions": int(split.train["session_id"].nunique()),
        "train_clicks": len(split.train),
        "items": int(catalogue),
        "test_sessions": int(split.test["session_id"].nunique()),
        "test_prefixes": len(prefixes),
        "skipped": built.skipped,
    }
    return EvaluationResult(title="Session-based protocol", models=list(built.models), rows=rows + _fit_rows(built),
                            info=info)


def holdout_frame(dataset: str) -> pd.DataFrame:
    """An interactions frame for the holdout: MovieLens by name, else an event-log file."""
    if dataset == "movielens":
        from model.datasets import movielens

        return movielens.interactions(movielens.load_ratings())
    from model.datasets.event_log import read_event_log
    from model.interactions import events_to_frame

    frame = events_to_frame(read_event_log(Path(dataset)))
    return frame.dropna(subset=["item_id"])


def run_holdout_protocol(
    dataset: str, models: Sequence[str], share: float = 0.1, ks: Sequence[int] = KS, progress: bool = True,
) -> EvaluationResult:
    """Newest `share` of each user's events held out; each user's train history is the request's context."""
    frame = holdout_frame(dataset)
    train, test = temporal_holdout(frame, share)
    return _per_user(f"Per-user temporal holdout ({dataset}, newest {share:.0%})", train, test, models, ks, progress,
                     {"dataset": dataset, "users": int(frame["user_id"].nunique()), "train_events": len(train),
                      "test_events": len(test)})


def _per_user(title: str, train: pd.DataFrame, test: pd.DataFrame, models: Sequence[str], ks: Sequence[int],
              progress: bool, info: dict[str, object]) -> EvaluationResult:
    built = build_models(models, train)
    held = held_out_history(train, test)
    rows: list[MetricRow] = []
    try:
        for name, model in built.models.items():
            rows += score_users(name, model, held, ks, with_context=True, progress=progress)
    finally:
        built.close()
    return EvaluationResult(title=title, models=list(built.models), rows=rows + _fit_rows(built),
                            info={**info, "skipped": built.skipped})
