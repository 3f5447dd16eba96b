"""A recommender wrapper that keeps each request's deeper ranked list, so a replay can score metrics@20.

The pipeline still receives exactly the top `request.k`, so the notifications are those the worker would send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PRODUCT, Event
from streamrec.session_store import SessionContext


class RecordingRecommender(Recommender):
    """Delegates to `inner` asking for at least `depth` items; remembers them by (user, trigger time)."""

    def __init__(self, inner: Recommender, depth: int, learns_from_stream: bool = True) -> None:
        self.inner = inner
        self.depth = depth
        self.name = inner.name
        self.version = inner.version
        self.observing = learns_from_stream
        self._ranked: dict[tuple[str, int], list[ScoredItem]] = {}

    def swap(self, inner: Recommender) -> None:
        """Serve `inner` from the next batch on (a retrained model), keeping what was recorded."""
        self.inner = inner
        self.version = inner.version

    def fit(self, interactions: pd.DataFrame) -> RecordingRecommender:
        self.inner.fit(interactions)
        return self

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        deep = [replace(r, k=max(r.k, self.depth)) for r in requests]
        ranked = self.inner.recommend_batch(deep) if deep else []
        out = []
        for request, items in zip(requests, ranked, strict=True):
            items = [i for i in items if i.item_id not in request.exclude]  # a model that ignores exclude is held to it
            self._ranked[(request.user_id, request.now_ms)] = items
            out.append(items[: request.k])
        return out

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        return self.inner.similar_items(item_id, k, kind)

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        if self.observing:
            self.inner.observe(events, contexts)

    def take(self, user_id: str, ts_ms: int) -> list[ScoredItem]:
        """The deep list recorded for this user's trigger at `ts_ms` (forgotten once taken)."""
        return self._ranked.pop((user_id, ts_ms), [])

    def forget(self) -> None:
        self._ranked.clear()
