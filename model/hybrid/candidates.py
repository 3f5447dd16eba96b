"""The union of every source's top-N for a batch of triggers, with where each candidate came from.

One call per source per batch (`recommend_batch`), each asked for `depth` items under the request's own exclusions
(consumed, just notified), so the ranker never sees what the filters would drop. Serving and the logging of
training examples both call `gather`: the candidates a model is trained on are the ones it will be served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from model.recommender import RecommendationRequest, Recommender, ScoredItem
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
            answers[name] = source.recommend_batch(asked)
    return [_union(request, {name: answers[name][j] for name in sources}, max_candidates)
            for j, request in enumerate(requests)]


def _union(request: RecommendationRequest, lists: Mapping[str, Sequence[ScoredItem]],
           max_candidates: int) -> CandidateSet:
    exclude = request.exclude
    index: dict[str, int] = {}
    columns: dict[str, tuple[list[int], list[int], list[float]]] = {}
    tops: dict[str, float] = {}
    for name, ranked in lists.items():
        tops[name] = ranked[0].score if ranked else 0.0
        listed = [(rank, scored.item_id, scored.score) for rank, scored in enumerate(ranked)
                  if scored.item_id not in exclude]
        rows = [index.setdefault(item, len(index)) for _, item, _ in listed]
        if len(set(rows)) < len(rows):  # a source listed an item twice: its first listing is its rank
            first: dict[int, int] = {}
            for at, row in enumerate(rows):
                first.setdefault(row, at)
            keep = sorted(first.values())
            listed, rows = [listed[at] for at in keep], [rows[at] for at in keep]
        columns[name] = (rows, [rank for rank, _, _ in listed], [score for _, _, score in listed])
    n = len(index)
    rank_columns: dict[str, np.ndarray] = {}
    score_columns: dict[str, np.ndarray] = {}
    for name, (rows, ranks, scores) in columns.items():
        rank_column = np.full(n, -1, np.int32)
        score_column = np.zeros(n)
        rank_column[rows] = ranks
        score_column[rows] = scores
        rank_columns[name], score_columns[name] = rank_column, score_column
    found = CandidateSet(request, list(index), rank_columns, score_columns, tops)
    if n > max_candidates:
        keep = np.argsort(-found.fused(), kind="stable")[:max_candidates]  # best first, ties in first-seen order
        found = CandidateSet(request, [found.items[j] for j in keep], {k: v[keep] for k, v in rank_columns.items()},
                             {k: v[keep] for k, v in score_columns.items()}, tops)
    return found


def reciprocal_rank_order(candidates: CandidateSet) -> np.ndarray:
    """The untrained blend: reciprocal-rank fusion (k = 60, as Cormack et al.), one score per candidate."""
    return candidates.fused()
