"""The per-user temporal holdout split for data without sessions: the newest share of each user's events."""

from __future__ import annotations

import numpy as np
import pandas as pd


def temporal_holdout(frame: pd.DataFrame, share: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the newest `share` of each user's events (at least one, for users with two or more)."""
    ordered = frame.sort_values(["user_id", "ts"], kind="mergesort")
    position = ordered.groupby("user_id").cumcount(ascending=False)  # 0 = newest
    size = ordered["user_id"].map(ordered["user_id"].value_counts())
    held = np.where(size >= 2, np.maximum(1, np.floor(size * share)), 0)
    is_test = position < held
    return ordered[~is_test].reset_index(drop=True), ordered[is_test].reset_index(drop=True)
