"""The union of every source's top-N for a batch of triggers, with where each candidate came from.

One call per source per batch (`recommend_batch`), each asked for `depth` items under the request's own exclusions
(consumed, just notified), so the ranker never sees what the filters would drop. Serving and the logging of
training examples both call `gather`: the candidates a model is trained on are the ones it will be served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from model.recommender import RecommendationRequest, Recommender
from streamrec.stage_timing import timed


class Hit(NamedTuple):  # a tuple: made for every candidate of every source (a frozen dataclass cost 3x as much)
    rank: int  # 0-based position in the source's list
    score: float
    top_score: float  # the source's best score for this trigger (scores are compared within a list only)


@dataclass
class CandidateSet:
    """One trigger's candidates (first-seen order over the sources) and, per candidate, its hits by source."""

    request: RecommendationRequest
    items: list[str]
    hits: list[dict[str, Hit]]


def gather(requests: Sequence[RecommendationRequest], sources: Mapping[str, Recommender], depth: int,
           max_candidates: int) -> list[CandidateSet]:
    """Per request: the union of the sources' top-`depth`, at most `max_candidates` (best reciprocal-rank sum kept)."""
    asked = [replace(r, k=depth) for r in requests]
    answers = {}
    for name, source in sources.items():
        with timed(f"recommend: source {name}"):
            answers[name] = source.recommend_batch(asked)
    sets: list[CandidateSet] = []
    for j, request in enumerate(requests):
        by_item: dict[str, dict[str, Hit]] = {}
        fused: dict[str, float] = {}  # reciprocal-rank fusion, summed as the hits come (`_fused` of each item)
        exclude = request.exclude
        for name in sources:
            ranked = answers[name][j]
            top = ranked[0].score if ranked else 0.0
            for rank, scored in enumerate(ranked):
                item = scored.item_id
                if item in exclude:
                    continue
                hits = by_item.get(item)
                if hits is None:
                    by_item[item] = {name: Hit(rank, scored.score, top)}
                    fused[item] = 1.0 / (60 + rank)
                elif name not in hits:  # a source's first listing of an item is its rank
                    hits[name] = Hit(rank, scored.score, top)
                    fused[item] += 1.0 / (60 + rank)
        items = list(by_item)
        if len(items) > max_candidates:
            items = sorted(items, key=lambda i: -fused[i])[:max_candidates]
        sets.append(CandidateSet(request, items, [by_item[i] for i in items]))
    return sets


def reciprocal_rank_order(candidates: CandidateSet) -> list[float]:
    """The untrained blend: reciprocal-rank fusion (k = 60, as Cormack et al.), one score per candidate."""
    return [_fused(hits) for hits in candidates.hits]


def _fused(hits: dict[str, Hit]) -> float:
    return sum(1.0 / (60 + h.rank) for h in hits.values())
