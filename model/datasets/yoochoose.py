"""YooChoose clicks as prepared by session-rec (`../shared/data/yoochoose-100k-sessionrec`): timed sessions.

Tab-separated `SessionId`, `ItemId`, `Time` (unix seconds). There are no user ids: each session is its
own user, which is what the session-based protocol assumes anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from model.datasets import shared_data_dir
from streamrec.events import PageView

FOLDER = "yoochoose-100k-sessionrec"
SPLITS = {
    "train_full": "yoochoose-clicks-100k_train_full.txt",
    "test": "yoochoose-clicks-100k_test.txt",
    "train_tr": "yoochoose-clicks-100k_train_tr.txt",
    "train_valid": "yoochoose-clicks-100k_train_valid.txt",
}


def split_path(split: str, data_dir: Path | None = None) -> Path:
    """Path of one session-rec split (train_full, test, train_tr, train_valid)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return (data_dir or shared_data_dir()) / FOLDER / SPLITS[split]


def load_clicks(path: Path) -> pd.DataFrame:
    """(session_id, item_id, ts) strings and UTC times, in time order within each session."""
    raw = pd.read_csv(path, sep="\t", dtype={"SessionId": str, "ItemId": str, "Time": float})
    frame = pd.DataFrame(
        {
            "session_id": raw["SessionId"],
            "item_id": raw["ItemId"],
            "ts": pd.to_datetime(raw["Time"], unit="s", utc=True),
        }
    )
    return frame.sort_values(["ts", "session_id"], kind="mergesort").reset_index(drop=True)


def click_events(frame: pd.DataFrame, id_prefix: str = "yc") -> Iterator[PageView]:
    """Every click as a product page view; the session doubles as the user; ids are stable across runs."""
    for i, (session, item, ts) in enumerate(zip(frame["session_id"], frame["item_id"], frame["ts"], strict=True)):
        sid = f"{id_prefix}{session}"
        yield PageView(event_id=f"{id_prefix}-{i}-{session}", user_id=sid, session_id=sid, item_id=item, ts=ts)
