"""The ASOS protocol (`streamrec evaluate asos`): train on `train`, one top-k list per user, score on `valid`.

Every valid user's train purchases are excluded from their list (ASOS never re-shows a bought item), and a
request carries the user id alone (ASOS has no sessions). The two-tower is trained here with the sparse-data
configuration below: its epochs and popularity prior are chosen on a per-user holdout of `train`
(`model/two_tower/holdout.py`), never on `valid`; `als-tuned` is ALS with its hyperparameters chosen the same
way (`model/baselines/als_selection.py`), beside `als` at implicit's defaults. The docs' ASOS headline
(docs/models.md) is this path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from measurement.evaluation.offline_models import build_models
from measurement.report import EvaluationResult
from model.baselines.als_selection import AlsSettings, TunedAlsRecommender
from model.holdout_scoring import HeldOut, held_out_purchases, score_users
from model.metrics import KS, MetricRow
from model.training import TrainingConfig

DEFAULT_MODELS = ("popularity", "item-cosine", "als", "als-tuned", "two-tower", "two-tower-ranker")
TWO_TOWER = ("two-tower", "two-tower-ranker")
ALS_TUNED = "als-tuned"  # the registry's model, built here to report its choice (selection table) in `info`


def asos_training_config(epochs: int = 15, embedding_dim: int = 64, l2: float = 1e-3, user_id_dropout: float = 0.0,
                         validation: Literal["per-user-holdout", "time-slice"] = "per-user-holdout",
                         ranker: bool = True) -> TrainingConfig:
    """The two-tower (+ ranker) configuration for ASOS's sparse purchases: larger batches, more L2, patience 3.

    Validation excludes each user's history as the protocol does; `time-slice` reproduces the old selection on
    the last 10% of the train file.
    """
    from model.ranking.features import RankerConfig
    from model.two_tower.towers import TwoTowerConfig

    two_tower = TwoTowerConfig(epochs=epochs, embedding_dim=embedding_dim, hidden_units=2 * embedding_dim, l2=l2,
                               batch_size=1024, learning_rate=2e-3, patience=3, validation_excludes_history=True,
                               user_id_dropout=user_id_dropout, validation=validation)
    return TrainingConfig(two_tower=two_tower, ranker=RankerConfig(epochs=4) if ranker else None)


def run_asos_protocol(models: Sequence[str] = DEFAULT_MODELS, config: TrainingConfig | None = None,
                      data_dir: Path | None = None, max_users: int | None = None, ks: Sequence[int] = KS,
                      bundle_dir: Path | None = None, progress: bool = True,
                      als_grid: list[AlsSettings] | None = None) -> EvaluationResult:
    """Fit every named model on ASOS train and score each valid user's list; the two-tower uses `config`,
    `als-tuned` the best of `als_grid` (default: `default_grid()`) on a holdout of train."""
    from model.baselines.popularity import PopularityRecommender
    from model.datasets.asos_frame import FOLDER, asos_train_valid
    from model.training import train_bundle
    from model.two_tower.recommender import TwoTowerRecommender
    from streamrec.settings import Settings

    folder = data_dir or Settings().data_dir / FOLDER
    train, valid = asos_train_valid(folder)
    held = held_out_purchases(train, valid)
    users = sorted(held.relevant)[:max_users] if max_users else None
    config = config or asos_training_config()
    built = build_models([m for m in models if m not in (*TWO_TOWER, ALS_TUNED)], train)
    rows: list[MetricRow] = [MetricRow(n, "all", "all", "fit_seconds", None, s, 0) for n, s in built.seconds.items()]
    info: dict[str, object] = {"train_purchases": len(train), "valid_purchases": len(valid),
                               "valid_users": len(users) if users is not None else len(held.relevant),
                               "excluded": "each user's train purchases", "skipped": built.skipped}
    names = list(built.models)
    try:
        for name, model in built.models.items():
            rows += score_users(name, model, held, ks, users=users, progress=progress)
    finally:
        built.close()
    if ALS_TUNED in models:
        rows += _tuned_als(train, held, ks, users, info, als_grid, progress)
        names.append(ALS_TUNED)
    if any(m in TWO_TOWER for m in models):
        bundle = train_bundle(train, config, progress=progress, trained_on=str(folder))
        if bundle_dir is not None:
            bundle.save(bundle_dir)
        fallback = PopularityRecommender().fit(train)
        rows.append(MetricRow("two-tower", "all", "all", "fit_seconds", None,
                              float(bundle.metrics["training_seconds"]), 0))
        info.update(two_tower_config=config.model_dump(mode="json"), bundle_metrics=bundle.metrics)
        for name in (m for m in models if m in TWO_TOWER):
            use_ranker = name == "two-tower-ranker"
            if use_ranker and bundle.ranker is None:
                info["skipped"] = {**built.skipped, name: "the bundle has no ranker"}
                continue
            model = TwoTowerRecommender(bundle, fallback=fallback, use_ranker=use_ranker)
            rows += score_users(name, model, held, ks, users=users, progress=progress)
            names.append(name)
    return EvaluationResult(title="ASOS DSF2020: train -> valid (train purchases excluded)", models=names,
                            rows=rows, info=info)


def _tuned_als(train: pd.DataFrame, held: HeldOut, ks: Sequence[int], users: list[str] | None,
               info: dict[str, object], grid: list[AlsSettings] | None, progress: bool) -> list[MetricRow]:
    """The registry's `als-tuned` (what `streamrec train --model als-tuned` saves and the worker serves): settings
    chosen on a holdout of `train` alone (`valid` is not passed in), refitted on all of `train`, then scored on
    `valid` like the others; the choice and the holdout table go into `info`."""
    started = time.monotonic()
    model = TunedAlsRecommender(grid, threads=2).fit(train)
    selection = model.selection
    assert selection is not None
    info["als_tuned"] = {"chosen": selection.chosen.model_dump(), "objective": selection.objective,
                         "holdout_users": selection.holdout_users, "held_out_rows": selection.held_out_rows,
                         "fit_rows": selection.fit_rows, "holdout": selection.table()}
    rows = [MetricRow(ALS_TUNED, "all", "all", "fit_seconds", None, round(time.monotonic() - started, 2), 0)]
    return rows + score_users(ALS_TUNED, model, held, ks, users=users, progress=progress)
