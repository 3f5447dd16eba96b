"""MovieLens 100K in RecBole's atomic format (`../shared/data/movielens-100k`): timed ratings, no sessions.

A rating is read as the user having watched the movie (a `purchase` of the item): the per-user temporal
holdout then asks which movies a user watches next.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from model.datasets import shared_data_dir
from model.interactions import COLUMNS

FOLDER = "movielens-100k"


def default_path(data_dir: Path | None = None) -> Path:
    return (data_dir or shared_data_dir()) / FOLDER / "ml-100k.inter"


def read_atomic(path: Path) -> pd.DataFrame:
    """A RecBole atomic file; the typed header `name:type` becomes plain column names."""
    frame = pd.read_csv(path, sep="\t", dtype=str)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def load_ratings(path: Path | None = None) -> pd.DataFrame:
    """(user_id, item_id, rating, ts) in time order."""
    raw = read_atomic(path or default_path())
    frame = pd.DataFrame(
        {
            "user_id": raw["user_id"],
            "item_id": raw["item_id"],
            "rating": raw["rating"].astype(float),
            "ts": pd.to_datetime(raw["timestamp"].astype(float), unit="s", utc=True),
        }
    )
    return frame.sort_values(["ts", "user_id", "item_id"], kind="mergesort").reset_index(drop=True)


def interactions(ratings: pd.DataFrame) -> pd.DataFrame:
    """Ratings as the interactions frame every `fit` takes (one session per user)."""
    frame = pd.DataFrame(
        {
            "event_id": [f"ml-{u}-{i}" for u, i in zip(ratings["user_id"], ratings["item_id"], strict=True)],
            "user_id": ratings["user_id"].to_numpy(),
            "session_id": ("ml-" + ratings["user_id"]).to_numpy(),
            "ts": ratings["ts"].to_numpy(),
            "event_type": "purchase",
            "kind": "product",
            "item_id": ratings["item_id"].to_numpy(),
        }
    )
    return frame.reindex(columns=COLUMNS)
