"""ASOS retrieval benchmark: train on `train`, recommend per user excluding train purchases, score on `valid`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from measurement.evaluation.holdout_evaluation import evaluate_holdout, metrics_table, relevant_and_exclude
from measurement.report_files import write_bar_plot, write_table
from model.baselines.item_cosine import ItemCosineRecommender
from model.baselines.popularity import PopularityRecommender
from model.datasets.asos_frame import DEFAULT_DIR, asos_train_valid
from model.training import TrainingConfig, train_bundle
from model.two_tower.recommender import TwoTowerRecommender

PLOT_COLUMNS = ("recall@10", "recall@20", "recall@100", "ndcg@10", "hr@10", "hr@100")


def run_asos_benchmark(config: TrainingConfig, data_dir: Path = DEFAULT_DIR, out_dir: Path = Path("reports"),
                       max_users: int | None = None, bundle_dir: Path | None = None,
                       progress: bool = True) -> pd.DataFrame:
    """Popularity, item-item cosine, two-tower and two-tower + ranker on the same users; writes the report."""
    train, valid = asos_train_valid(data_dir)
    relevant, exclude = relevant_and_exclude(train, valid)
    if max_users:
        relevant = dict(sorted(relevant.items())[:max_users])
    rows: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {}
    for baseline in (PopularityRecommender(), ItemCosineRecommender()):
        started = time.monotonic()
        baseline.fit(train)
        timings[baseline.name] = time.monotonic() - started
        rows[baseline.name] = evaluate_holdout(baseline, relevant, exclude, progress=progress)
    bundle = train_bundle(train, config, progress=progress, trained_on=str(data_dir))
    timings["two-tower bundle"] = float(bundle.metrics["training_seconds"])
    if bundle_dir is not None:
        bundle.save(bundle_dir)
    for use_ranker in (False, True):
        if use_ranker and bundle.ranker is None:
            continue
        model = TwoTowerRecommender(bundle, fallback=PopularityRecommender().fit(train), use_ranker=use_ranker)
        rows[model.name] = evaluate_holdout(model, relevant, exclude, progress=progress)
    table = metrics_table(rows)
    write_table(table, out_dir, "asos_eval")
    write_bar_plot(table, PLOT_COLUMNS, out_dir, "asos_eval", "ASOS dsf2020: train -> valid (train purchases excluded)")
    (out_dir / "asos_eval_training.json").write_text(json.dumps(
        {"fit_seconds": timings, "bundle_metrics": bundle.metrics, "config": config.model_dump()}, indent=2,
        default=str))
    return table
