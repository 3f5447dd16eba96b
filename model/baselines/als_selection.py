"""ALS's hyperparameters chosen on a per-user holdout carved from the training frame, never on the test split.

implicit's defaults (100 factors, regularization 0.01, alpha 1, 15 iterations) were set for other data; on
sparse purchases the confidence weight alpha matters most. Each candidate is fitted on the training frame
minus a share of sampled users' purchases and scored on those held-out purchases with the evaluation's own
question and exclusion rule (`model.holdout_scoring`: no re-showing what the user bought in the fit part).
The winner maximises Recall@20 + NDCG@10, the two figures the returning-user bar names; `TunedAlsRecommender`
(the registry's and the worker's `als-tuned`) refits it on the whole training frame and saves the choice beside
the factors.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

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


def compact_grid() -> list[AlsSettings]:
    """implicit's defaults plus factors {64, 128} x alpha {4, 8} (5 fits): the corner of `default_grid` that won
    on ASOS's holdout (regularization mattered least there), cheap enough for every hybrid training."""
    return [DEFAULT_SETTINGS, *(AlsSettings(factors=f, alpha=a) for f, a in itertools.product((64, 128), (4.0, 8.0)))]


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


MIN_HOLDOUT_USERS = 100  # fewer held-out users than this: no choice is made, the grid's first entry stands


def choose_als_settings(train: pd.DataFrame, grid: list[AlsSettings] | None = None, user_fraction: float = 0.2,
                        item_fraction: float = 0.2, seed: int = 7, threads: int = 2,
                        progress: bool = False, min_holdout_users: int | None = None) -> AlsSelection:
    """Hold out ~`item_fraction` of the purchases of `user_fraction` of users with >= 2 (from `train` only), fit
    every candidate on the rest, and choose the best Recall@20 + NDCG@10 on the held-out purchases.

    `threads` stays small: the search runs beside other work, and ALS fits here take seconds. With nothing to
    hold out (no user with 2 purchases, or none left to find) nothing is fitted and the grid's first entry stands
    (implicit's defaults in both grids here), with `holdout_users` 0 saying so. So it does with fewer than
    `min_holdout_users` (default `MIN_HOLDOUT_USERS`) held-out users: a choice on a handful of users is noise
    (a 20,000-event simulation holds out 7 to 14, and picked settings that scored below the defaults in its
    replay).
    """
    grid = grid or default_grid()
    holdout = per_user_holdout(train, user_fraction=user_fraction, item_fraction=item_fraction, seed=seed)
    held = held_out_purchases(holdout.fit_part, holdout.held_out)
    minimum = MIN_HOLDOUT_USERS if min_holdout_users is None else min_holdout_users
    if len(held.relevant) < max(1, minimum):
        return AlsSelection(chosen=grid[0], candidates=[], holdout_users=0, held_out_rows=len(holdout.held_out),
                            fit_rows=len(holdout.fit_part))
    scores: list[CandidateScore] = []
    for settings in grid:
        started = time.monotonic()
        model = settings.recommender(seed=seed, threads=threads).fit(holdout.fit_part)
        fit_seconds = time.monotonic() - started
        rows = score_users("als", model, held, ks=(10, 20), progress=progress)
        scores.append(CandidateScore(settings=settings, recall_at_20=metric_value(rows, "recall", 20),
                                     ndcg_at_10=metric_value(rows, "NDCG", 10), fit_seconds=fit_seconds))
    best = max(scores, key=lambda c: c.objective)  # first of equals: the grid's order breaks ties
    return AlsSelection(chosen=best.settings, candidates=scores, holdout_users=len(held.relevant),
                        held_out_rows=len(holdout.held_out), fit_rows=len(holdout.fit_part))


class TunedAlsRecommender(AlsRecommender):
    """`als-tuned`: ALS whose settings `fit` chooses on a holdout of the frame it is given, then refits on all of
    it; saved with the choice and the holdout table (als.json's "selection"), and loaded back as itself."""

    name = "als-tuned"

    def __init__(self, grid: list[AlsSettings] | None = None, seed: int = 7, threads: int = 0,
                 selection_threads: int = 2, history_cap: int = 50) -> None:
        """`grid` defaults to `default_grid()`; `threads` is the refit's (0: every core, as `als`), the search
        runs on `selection_threads`."""
        super().__init__(seed=seed, threads=threads, history_cap=history_cap)
        self.grid = grid
        self.seed, self.selection_threads = seed, selection_threads
        self.selection: AlsSelection | None = None

    @property
    def settings(self) -> AlsSettings:
        """The settings the factors are fitted with (implicit's defaults before `fit`)."""
        return AlsSettings(**{name: self.params[name] for name in AlsSettings.model_fields})

    def fit(self, interactions: pd.DataFrame) -> TunedAlsRecommender:
        self.selection = choose_als_settings(interactions, self.grid, seed=self.seed, threads=self.selection_threads)
        self.params.update(self.selection.chosen.model_dump())
        super().fit(interactions)
        return self

    def metadata(self) -> dict[str, object]:
        selection = self.selection.model_dump(mode="json") if self.selection is not None else None
        return {**super().metadata(), "selection": selection}

    @classmethod
    def load(cls, folder: Path) -> TunedAlsRecommender:
        model = super().load(folder)
        saved = json.loads((folder / "als.json").read_text()).get("selection")
        model.selection = AlsSelection.model_validate(saved) if saved is not None else None
        return model
