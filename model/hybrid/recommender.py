"""The served hybrid: every candidate source's top-N, united, featured and ranked by the listwise ranker.

`candidates(requests)` is the one code path from a batch of triggers to (candidates, feature matrix); serving
ranks its output, and the example log (`model.hybrid.example_log`) records it while a training window is replayed
through the worker's pipeline. Without a trained ranker the union is ordered by reciprocal-rank fusion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.hybrid.candidates import CandidateSet, gather, reciprocal_rank_order
from model.hybrid.features import batch_features, feature_names
from model.hybrid.item_stats import ItemStats
from model.hybrid.ranker import ListwiseRanker
from model.recommender import RecommendationRequest, Recommender, ScoredItem, ToolsFrom, WithFallback
from streamrec.events import PRODUCT, Event
from streamrec.session_store import SessionContext
from streamrec.stage_timing import timed


@dataclass
class Featured:
    """One trigger's candidate set and its feature matrix (rows follow `candidates.items`)."""

    candidates: CandidateSet
    features: np.ndarray


class HybridRecommender(Recommender):
    name = "hybrid"
    version = "1"

    def __init__(self, sources: Mapping[str, Recommender], stats: ItemStats, ranker: ListwiseRanker | None = None,
                 depth: int = 100, max_candidates: int = 300, fallback: Recommender | None = None) -> None:
        self.sources = dict(sources)
        self.stats = stats
        self.ranker = ranker
        self.depth = depth
        self.max_candidates = max_candidates
        self.fallback = fallback  # tools (the sources are product models)
        self.conversion: ListwiseRanker | None = None  # the purchase head (`model.hybrid.conversion`), if trained
        self.feature_names = feature_names(list(self.sources))
        # Sources the fallback already observes (the worker's streaming models are shared with it), found once.
        self._inside_fallback = {id(part) for part in _parts(fallback)}

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """Statistics, the fallback, and every source the fallback does not already observe: each event once."""
        self.stats.observe(events)
        if self.fallback is not None:
            self.fallback.observe(events, contexts)
        for source in self.sources.values():
            if id(source) not in self._inside_fallback:
                source.observe(events, contexts)

    def adopt_stats(self, stats: ItemStats) -> None:
        """Use `stats` (the stream's so far, or a frame's) for the features and every trending source."""
        self.stats = stats
        for source in self.sources.values():
            if hasattr(source, "stats") and isinstance(source.stats, ItemStats):
                source.stats = stats

    def save(self, folder: Path) -> Path:
        from model.hybrid.saved import save_hybrid

        return save_hybrid(self, folder)

    def candidates(self, requests: Sequence[RecommendationRequest]) -> list[Featured]:
        sets = gather(requests, self.sources, self.depth, self.max_candidates)
        names = list(self.sources)
        with timed("recommend: features"):
            return [Featured(s, f) for s, f in zip(sets, batch_features(sets, names, self.stats), strict=True)]

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def purchase_logits(self, featured: Featured) -> np.ndarray | None:
        """The conversion head's logit per candidate (None without one): the odds the session buys it."""
        return None if self.conversion is None else self.conversion.scores(featured.features)

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        products = [j for j, r in enumerate(requests) if r.kind == PRODUCT]
        out: list[list[ScoredItem]] = [[] for _ in requests]
        featured_sets = self.candidates([requests[j] for j in products])
        with timed("recommend: ranker"):
            for j, featured, scores in zip(products, featured_sets, self._scores(featured_sets), strict=True):
                out[j] = ranked(featured.candidates.items, scores, featured.candidates.request.k)
        others = [j for j, r in enumerate(requests) if r.kind != PRODUCT]
        if others and self.fallback is not None:
            for j, answer in zip(others, self.fallback.recommend_batch([requests[j] for j in others]), strict=True):
                out[j] = answer
        return out

    def _scores(self, featured_sets: Sequence[Featured]) -> list[np.ndarray]:
        """Each set's score per candidate: the ranker's, in one call over all the batch's candidates (the network
        scores a candidate from its own row, so no padding is needed), else reciprocal-rank fusion."""
        if self.ranker is None:
            return [reciprocal_rank_order(f.candidates) for f in featured_sets]
        if not featured_sets:
            return []
        scores = self.ranker.scores(np.concatenate([f.features for f in featured_sets]))
        return np.split(scores, np.cumsum([len(f.candidates.items) for f in featured_sets])[:-1])


def ranked(items: Sequence[str], scores: np.ndarray, k: int) -> list[ScoredItem]:
    """The `k` best items by score (ties by item id), the one ordering serving and the example log share."""
    if len(items) > 4 * k:  # only those tied with or above the k-th best need the full ordering
        kth = np.partition(-np.asarray(scores), k - 1)[k - 1] if k > 0 else np.inf
        keep = np.flatnonzero(-np.asarray(scores) <= kth)
    else:
        keep = range(len(items))
    order = sorted(keep, key=lambda j: (-scores[j], items[j]))
    return [ScoredItem(items[j], float(scores[j])) for j in order[:k]]


def _parts(recommender: Recommender | None) -> list[Recommender]:
    """`recommender` and, through `WithFallback`s and `ToolsFrom`s, every recommender it delegates to."""
    if recommender is None:
        return []
    if isinstance(recommender, WithFallback):
        return [recommender, *_parts(recommender.model), *_parts(recommender.fallback)]
    if isinstance(recommender, ToolsFrom):
        return [recommender, *_parts(recommender.tools), *_parts(recommender.rest)]
    return [recommender]
