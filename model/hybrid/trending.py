"""Trending: the items with the most decayed events in the last hour of event time, as a candidate source.

Read from the hybrid's `ItemStats` (fresh to the event); the sorted list is rebuilt when event time has moved on by
`refresh_ms` (sorting every item at every trigger would cost more than all the other sources together).
"""

from __future__ import annotations

from model.hybrid.item_stats import ItemStats
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PRODUCT


class TrendingRecommender(Recommender):
    name = "trending"
    version = "1"

    def __init__(self, stats: ItemStats, size: int = 200, refresh_ms: int = 60_000) -> None:
        self.stats = stats
        self.size = size
        self.refresh_ms = refresh_ms
        self._top: list[ScoredItem] = []
        self._built_at_ms: int | None = None

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        if request.kind != PRODUCT:
            return []
        at = max(request.now_ms, self.stats.now_ms)
        if self._built_at_ms is None or at - self._built_at_ms >= self.refresh_ms:
            self._top = [ScoredItem(item, score) for item, score in self.stats.trending(self.size, at)]
            self._built_at_ms = at
        exclude = request.exclude
        found = [scored for scored in self._top if scored.item_id not in exclude]
        return found[: request.k]
