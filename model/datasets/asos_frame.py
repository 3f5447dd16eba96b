"""ASOS purchase pairs as interactions frames (one purchase per row, file order kept as 1 ms apart)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model.datasets import shared_data_dir
from model.datasets.asos import ORIGIN, TRAIN, VALID, load_pairs
from model.interactions import COLUMNS

FOLDER = "asos-dsf2020"


def asos_interactions(path: Path, origin_offset_ms: int = 0) -> pd.DataFrame:
    """The interactions frame of one ASOS split; `origin_offset_ms` puts valid after train in time."""
    pairs = load_pairs(path)
    n = len(pairs)
    ts = pd.Timestamp(ORIGIN) + pd.to_timedelta(np.arange(n) + origin_offset_ms, unit="ms")
    frame = pd.DataFrame({
        "event_id": [f"asos-{path.stem[:20]}-{i}" for i in range(n)],
        "user_id": pairs["user_id"], "session_id": "asos-" + pairs["user_id"], "ts": ts,
        "event_type": "purchase", "kind": "product", "item_id": pairs["item_id"],
        "category": None, "brand": None, "price": np.nan,
    })
    return frame[COLUMNS]


def asos_train_valid(folder: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid) frames; valid's timestamps come after train's (default folder: `<data_dir>/asos-dsf2020`)."""
    folder = folder or shared_data_dir() / FOLDER
    train = asos_interactions(folder / TRAIN)
    valid = asos_interactions(folder / VALID, origin_offset_ms=len(train) + 1000)
    return train, valid
