"""ALS's hyperparameters chosen on a per-user holdout carved from the training frame, never on the test split.

implicit's defaults (100 factors, regularization 0.01, alpha 1, 15 iterations) were set for other data; on
sparse purchases the confidence weight alpha matters most. Each candidate is fitted on the training frame
minus a share of sampled users' purchases and scored on those held-out purchases with the evaluation's own
question and exclusion rule (`model.holdout_scoring`: no re-showing what the user bought in the fit part).
The winner maximises Recall@20 + NDCG@10, the two figures the returning-user bar names; the caller refits it
on the whole training frame.
"""

from __future__ import annotations

import itertools
import time

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from model.baselines.als import AlsRecommender
from model.holdout_scoring import held_out_purchases, score_users
from model.metrics import metric_value
from model.two_tower.holdout import per_user_holdout


class AlsSettings(BaseModel):
    """The hyperparameters searched; field names are `AlsRecommender`'s arguments (confidence = 1 + alpha x
    event weight, a purchase weighing 5)."""

    model_config = ConfigDict(frozen=True)

    factors: int = Field(100, gt=0)
    regularization: float = Field(0.01, ge=0)
    alpha: float = Field(1.0, gt=0)
    iterations: int = Field(15, gt=0)

    def recommender(self, seed: int = 7, threads: int = 0) -> AlsRecommender:
        return AlsRecommender(**self.model_dump(), seed=seed, threads=threads)


DEFAULT_SETTINGS = AlsSettings()  # implicit's own defaults: the baseline every choice is read against


def default_grid() -> list[AlsSettings]:
    """implicit's defaults plus a coarse grid (19 fits): width, confidence weight, regularization.

    Iterations stay at 15: on ASOS's holdout 30 gave the same figures at twice the cost.
    """
    grid = [AlsSettings(factors=f, alpha=a, regularization=r)
            for f, a, r in itertools.product((64, 128, 256), (1.0, 4.0, 8.0), (0.01, 1.0))]
    return [DEFAULT_SETTINGS, *grid]


class CandidateScore(BaseModel):
    """One candidate's holdout figures."""

    settings: AlsSettings
    recall_at_20: float
    ndcg_at_10: float
    fit_seconds: float

    @property
    def objective(self) -> float:
        return self.recall_at_20 + self.ndcg_at_10


class AlsSelection(BaseModel):
    """The chosen settings, every candidate's holdout figures, and the holdout's size (for the report)."""

    chosen: AlsSettings
    candidates: list[CandidateScore]
    holdout_users: int
    held_out_rows: int
    fit_rows: int
    objective: str = "Recall@20 + NDCG@10 on held-out train purchases"

    def table(self) -> list[dict[str, object]]:
        """Candidates as rows, best first (what a report prints)."""
        ranked = sorted(self.candidates, key=lambda c: c.objective, reverse=True)
        return [{**c.settings.model_dump(), "recall@20": round(c.recall_at_20, 4), "ndcg@10": round(c.ndcg_at_10, 4),
                 "fit_seconds": round(c.fit_seconds, 1), "chosen": c.settings == self.chosen} for c in ranked]


def choose_als_settings(train: pd.DataFrame, grid: list[AlsSettings] | None = None, user_fraction: float = 0.2,
                        item_fraction: float = 0.2, seed: int = 7, threads: int = 2,
                        progress: bool = False) -> AlsSelection:
    """Hold out ~`item_fraction` of the purchases of `user_fraction` of users with >= 2 (from `train` only), fit
    every candidate on the rest, and choose the best Recall@20 + NDCG@10 on the held-out purchases.

    `threads` stays small: the search runs beside other work, and ALS fits here take seconds.
    """
    holdout = per_user_holdout(train, user_fraction=user_fraction, item_fraction=item_fraction, seed=seed)
    held = held_out_purchases(holdout.fit_part, holdout.held_out)
    scores: list[CandidateScore] = []
    for settings in grid or default_grid():
        started = time.monotonic()
        model = settings.recommender(seed=seed, threads=threads).fit(holdout.fit_part)
        fit_seconds = time.monotonic() - started
        rows = score_users("als", model, held, ks=(10, 20), progress=progress)
        scores.append(CandidateScore(settings=settings, recall_at_20=metric_value(rows, "recall", 20),
                                     ndcg_at_10=metric_value(rows, "NDCG", 10), fit_seconds=fit_seconds))
    best = max(scores, key=lambda c: c.objective)  # first of equals: the grid's order breaks ties
    return AlsSelection(chosen=best.settings, candidates=scores, holdout_users=len(held.relevant),
                        held_out_rows=len(holdout.held_out), fit_rows=len(holdout.fit_part))
