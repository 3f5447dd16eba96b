"""SR-GNN-preprocessed session benchmarks (`<data_dir>/diginetica-srgnn`, `yoochoose1_64-srgnn`).

Training samples are every prefix of every training session (the papers' augmentation); test samples
are the given (prefix, target) pairs. Item ids are the files' own (1..n_items); 0 is free for padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.datasets import shared_data_dir

DATASETS = {"diginetica": "diginetica-srgnn", "yoochoose": "yoochoose1_64-srgnn"}
# `Settings.data_dir` as it was at import (tests read it); `dataset_dir` asks the settings at call time.
DEFAULT_DATA_ROOT = shared_data_dir()


@dataclass(frozen=True)
class PrefixSamples:
    """(prefix -> next item) samples as a padded matrix: `items[i, :lengths[i]]` oldest first, rest 0."""

    items: np.ndarray  # int32 (n, max_len), right-padded with 0, the most recent `max_len` items kept
    lengths: np.ndarray  # int32 (n,)
    targets: np.ndarray  # int32 (n,)

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def head(self, n: int) -> PrefixSamples:
        return PrefixSamples(self.items[:n], self.lengths[:n], self.targets[:n])


@dataclass(frozen=True)
class SessionBenchmark:
    """One benchmark: training sessions (long form), augmented training samples, test samples."""

    name: str
    n_items: int  # largest item id; the model's vocabulary is 0..n_items
    train_sessions: pd.DataFrame  # session, pos, item in time order
    train: PrefixSamples
    test: PrefixSamples


def dataset_dir(name: str, data_root: Path | None = None) -> Path:
    """The folder of a benchmark; raises FileNotFoundError naming the path when it is absent."""
    if name not in DATASETS:
        raise ValueError(f"unknown session benchmark {name!r}; choose from {sorted(DATASETS)}")
    path = (data_root or shared_data_dir()) / DATASETS[name]
    if not (path / "train_sessions.parquet").exists():
        raise FileNotFoundError(f"session benchmark {name!r} not found at {path}")
    return path


def pad_sequences(sequences: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded int32 matrix of the last `max_len` items of each sequence, and the kept lengths."""
    lengths = np.fromiter((min(len(s), max_len) for s in sequences), dtype=np.int32, count=len(sequences))
    items = np.zeros((len(sequences), max_len), dtype=np.int32)
    for row, seq in enumerate(sequences):
        if len(seq):
            kept = seq[-max_len:]
            items[row, : len(kept)] = kept
    return items, lengths


def session_prefixes(sessions: pd.DataFrame, max_len: int) -> PrefixSamples:
    """Every (prefix -> next item) pair of every session, vectorised (no Python loop over samples)."""
    frame = sessions.sort_values(["session", "pos"], kind="stable")
    items = frame["item"].to_numpy(dtype=np.int32)
    session = frame["session"].to_numpy()
    starts = np.r_[0, np.flatnonzero(session[1:] != session[:-1]) + 1]
    start_of_row = np.repeat(starts, np.diff(np.r_[starts, len(items)]))
    pos = np.arange(len(items)) - start_of_row
    target_rows = np.flatnonzero(pos >= 1)  # every item after the first is a target of its prefix
    lengths = np.minimum(pos[target_rows], max_len).astype(np.int32)
    # Column j of the window holds the item `lengths - j` places before the target (oldest first).
    offsets = np.arange(max_len)[None, :] - lengths[:, None]  # negative inside the window
    index = target_rows[:, None] + offsets
    padded = np.where(offsets < 0, items[np.clip(index, 0, len(items) - 1)], 0).astype(np.int32)
    return PrefixSamples(padded, lengths, items[target_rows])


def load_benchmark(name: str, data_root: Path | None = None, max_len: int = 20) -> SessionBenchmark:
    """Load a benchmark with prefixes capped at the `max_len` most recent items."""
    path = dataset_dir(name, data_root)
    sessions = pd.read_parquet(path / "train_sessions.parquet")
    test = pd.read_parquet(path / "test_prefixes.parquet")
    test_items, test_lengths = pad_sequences([np.asarray(p, dtype=np.int32) for p in test["prefix"]], max_len)
    test_samples = PrefixSamples(test_items, test_lengths, test["target"].to_numpy(dtype=np.int32))
    n_items = int(max(sessions["item"].max(), test["target"].max(), test_items.max()))
    return SessionBenchmark(name, n_items, sessions, session_prefixes(sessions, max_len), test_samples)
