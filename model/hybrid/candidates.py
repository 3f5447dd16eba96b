"""The union of every source's top-N for a batch of triggers, with where each candidate came from.

One call per source per batch (`recommend_batch`), each asked for `depth` items under the request's own exclusions
(consumed, just notified), so the ranker never sees what the filters would drop. Serving and the logging of
training examples both call `gather`: the candidates a model is trained on are the ones it will be served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import NamedTuple

import numpy as np

from model.recommender import RankedColumns, RecommendationRequest, Recommender
from streamrec.stage_timing import timed


class Hit(NamedTuple):
    rank: int  # 0-based position in the source's list
    score: float
    top_score: float  # the source's best score for this trigger (scores are compared within a list only)


@dataclass
class CandidateSet:
    """One trigger's candidates (first-seen order over the sources) and, per source, columns over them: the
    candidate's rank in that source's list (-1: not in it) and its score there (0: not in it), and the source's
    best score for the trigger. Columns, not an object per hit: serving makes some 50,000 hits per batch."""

    request: RecommendationRequest
    items: list[str]
    ranks: dict[str, np.ndarray]  # source -> int32 per candidate
    scores: dict[str, np.ndarray]  # source -> float64 per candidate
    top_scores: dict[str, float]

    @property
    def hits(self) -> list[dict[str, Hit]]:
        """Per candidate, its hits by source (for reading and tests; serving uses the columns)."""
        out: list[dict[str, Hit]] = [{} for _ in self.items]
        for name, ranks in self.ranks.items():
            for row in np.flatnonzero(ranks >= 0):
                out[row][name] = Hit(int(ranks[row]), float(self.scores[name][row]), self.top_scores[name])
        return out

    def fused(self) -> np.ndarray:
        """Reciprocal-rank fusion per candidate (k = 60, as Cormack et al.)."""
        total = np.zeros(len(self.items))
        for ranks in self.ranks.values():
            total += np.where(ranks >= 0, 1.0 / (60.0 + ranks), 0.0)
        return total


def gather(requests: Sequence[RecommendationRequest], sources: Mapping[str, Recommender], depth: int,
           max_candidates: int) -> list[CandidateSet]:
    """Per request: the union of the sources' top-`depth`, at most `max_candidates` (best reciprocal-rank sum kept,
    ties in first-seen order)."""
    asked = [replace(r, k=depth) for r in requests]
    answers = {}
    for name, source in sources.items():
        with timed(f"recommend: source {name}"):
            answers[name] = source.recommend_columns(asked)
    return [_union(request, {name: answers[name][j] for name in sources}, max_candidates)
            for j, request in enumerate(requests)]


def _union(request: RecommendationRequest, lists: Mapping[str, RankedColumns], max_candidates: int) -> CandidateSet:
    exclude = request.exclude
    index: dict[str, int] = {}
    names = list(lists)
    tops: dict[str, float] = {}
    all_rows: list[list[int]] = []
    all_ranks: list[Sequence[int]] = []
    all_scores: list[list[float]] = []
    for name, (items, scores) in lists.items():
        tops[name] = float(scores[0]) if len(items) else 0.0
        ranks: Sequence[int] = range(len(items))
        if exclude and not exclude.isdisjoint(items):
            ranks = [rank for rank, item in enumerate(items) if item not in exclude]
            items, scores = [items[rank] for rank in ranks], [scores[rank] for rank in ranks]
        rows = [index.setdefault(item, len(index)) for item in items]
        if len(set(rows)) < len(rows):  # a source listed an item twice: its first listing is its rank
            first: dict[int, int] = {}
            for at, row in enumerate(rows):
                first.setdefault(row, at)
            keep = sorted(first.values())
            rows, ranks, scores = [rows[at] for at in keep], [ranks[at] for at in keep], [scores[at] for at in keep]
        all_rows.append(rows)
        all_ranks.append(ranks)
        all_scores.append(scores)
    # Every source's column in one (sources x candidates) array each, filled by one scatter (not one per source).
    n, lengths = len(index), [len(rows) for rows in all_rows]
    total = sum(lengths)
    flat = np.fromiter(chain.from_iterable(all_rows), np.int64, total)
    flat += np.repeat(np.arange(len(names), dtype=np.int64) * n, lengths)
    rank_matrix = np.full(len(names) * n, -1, np.int32)
    score_matrix = np.zeros(len(names) * n)
    rank_matrix[flat] = np.fromiter(chain.from_iterable(all_ranks), np.int32, total)
    score_matrix[flat] = np.fromiter(chain.from_iterable(all_scores), np.float64, total)
    rank_matrix, score_matrix = rank_matrix.reshape(len(names), n), score_matrix.reshape(len(names), n)
    items = list(index)
    if n > max_candidates:
        fused = np.where(rank_matrix >= 0, 1.0 / (60.0 + rank_matrix), 0.0).sum(axis=0)
        keep = np.argsort(-fused, kind="stable")[:max_candidates]  # best first, ties in first-seen order
        items, rank_matrix, score_matrix = [items[j] for j in keep], rank_matrix[:, keep], score_matrix[:, keep]
    return CandidateSet(request, items, dict(zip(names, rank_matrix, strict=True)),
                        dict(zip(names, score_matrix, strict=True)), tops)


def reciprocal_rank_order(candidates: CandidateSet) -> np.ndarray:
    """The untrained blend: reciprocal-rank fusion (k = 60, as Cormack et al.), one score per candidate."""
    return candidates.fused()
