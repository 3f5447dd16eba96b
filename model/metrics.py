"""Ranking metrics and the one result row, computed the same way for every model and every report.

Conventions: `ranked` is a model's list, best first; `relevant` is a set of item ids. HR@k is 1 if any
relevant item is in the top k; MRR@k is 1/rank of the first relevant item (0 below k); NDCG@k uses
binary gains. AUC is the probability a random positive outranks a random negative (ties count half).
Every protocol and benchmark reports `MetricRow`s at the k of `KS` (those up to its lists' depth).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

KS: tuple[int, ...] = (1, 5, 10, 20, 100)


def ks_up_to(depth: int, ks: Iterable[int] = KS) -> tuple[int, ...]:
    """The k of `ks` that a list of `depth` items can answer (a k beyond the list would repeat the last one)."""
    return tuple(k for k in ks if k <= depth)


@dataclass(frozen=True)
class MetricRow:
    """One figure of a report: long form, so tables, CSV, JSON and plots all read the same rows."""

    model: str
    target: str  # next / engaged / converted / holdout / all
    slice: str  # all, new-users, returning-users, cold-items, warm-items, an offer type, a stage, ...
    metric: str
    k: int | None
    value: float
    n: int  # how many lists (or groups, or timings) the value averages over


def metric_value(rows: Iterable[MetricRow], metric: str, k: int | None, target: str | None = None,
                 slice_name: str = "all") -> float:
    """The value of one figure among `rows` (KeyError naming it when absent)."""
    for row in rows:
        if row.metric == metric and row.k == k and row.slice == slice_name and target in (None, row.target):
            return row.value
    raise KeyError(f"no {metric}@{k} (target {target}, slice {slice_name}) among the rows")


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


RANK_METRICS = {
    "HR": hit_rate_at_k,
    "MRR": mrr_at_k,
    "NDCG": ndcg_at_k,
    "precision": precision_at_k,
    "recall": recall_at_k,
}


def score_lists(
    pairs: Sequence[tuple[Sequence[str], set[str] | frozenset[str]]], ks: Iterable[int] = KS
) -> dict[tuple[str, int], float]:
    """Mean of every rank metric at every k over the pairs with a non-empty relevant set."""
    usable = [(ranked, relevant) for ranked, relevant in pairs if relevant]
    out: dict[tuple[str, int], float] = {}
    for k in ks:
        for name, fn in RANK_METRICS.items():
            values = [fn(ranked, set(relevant), k) for ranked, relevant in usable]
            out[(name, k)] = float(np.mean(values)) if values else float("nan")
    return out


def rows_for(
    model: str, target: str, slice_name: str, pairs: Sequence[tuple[Sequence[str], set[str] | frozenset[str]]],
    ks: Iterable[int] = KS,
) -> list[MetricRow]:
    """`score_lists` as report rows; `n` counts the pairs with something relevant."""
    n = sum(1 for _, relevant in pairs if relevant)
    return [
        MetricRow(model, target, slice_name, metric, k, value, n)
        for (metric, k), value in score_lists(pairs, ks).items()
    ]


def coverage_at_k(lists: Sequence[Sequence[str]], catalogue_size: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    if catalogue_size <= 0:
        return float("nan")
    shown = {item for ranked in lists for item in ranked[:k]}
    return len(shown) / catalogue_size


def popularity_percentile_at_k(lists: Sequence[Sequence[str]], percentiles: Mapping[str, float], k: int) -> float:
    """Mean popularity percentile (100 = most popular) of the items in the top-k lists; unseen items count 0."""
    values = [percentiles.get(item, 0.0) for ranked in lists for item in ranked[:k]]
    return float(np.mean(values)) if values else float("nan")
