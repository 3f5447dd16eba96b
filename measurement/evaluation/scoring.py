"""Averages of the ranking metrics at several k over many (ranked list, relevant set) pairs, plus list-level
measures (catalogue coverage, popularity bias) that every protocol reports the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from model import metrics

KS: tuple[int, ...] = (1, 5, 10, 20)
RANK_METRICS = {
    "HR": metrics.hit_rate_at_k,
    "MRR": metrics.mrr_at_k,
    "NDCG": metrics.ndcg_at_k,
    "precision": metrics.precision_at_k,
    "recall": metrics.recall_at_k,
}


@dataclass(frozen=True)
class MetricRow:
    """One figure of a report: long form, so tables, CSV, JSON and plots all read the same rows."""

    model: str
    target: str  # next / engaged / converted / holdout / all
    slice: str  # all, new-users, returning-users, cold-items, warm-items, or an offer type
    metric: str
    k: int | None
    value: float
    n: int  # how many lists (or groups) the value averages over


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
