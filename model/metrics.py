"""Ranking metrics, computed the same way for every model and every report.

Conventions: `ranked` is a model's list, best first; `relevant` is a set of item ids. HR@k is 1 if any
relevant item is in the top k; MRR@k is 1/rank of the first relevant item (0 below k); NDCG@k uses
binary gains. AUC is the probability a random positive outranks a random negative (ties count half).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def hit_rate_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return float(any(item in relevant for item in ranked[:k]))


def mrr_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def precision_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return sum(item in relevant for item in ranked[:k]) / k


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    return sum(item in relevant for item in ranked[:k]) / len(relevant)


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal if ideal else 0.0


def auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC via ranks (ties get average ranks); NaN when only one class is present."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_scores = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def weighted_auc(groups: dict[str, tuple[Sequence[int], Sequence[float]]]) -> float:
    """AUC per group (e.g. per offer), averaged with each group weighted by its number of events.

    Groups with a single class have no AUC and are left out of the average.
    """
    total, weight = 0.0, 0
    for labels, scores in groups.values():
        value = auc(labels, scores)
        if not math.isnan(value):
            total += value * len(labels)
            weight += len(labels)
    return total / weight if weight else float("nan")
