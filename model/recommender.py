"""The one interface every recommender implements, from popularity to the two-tower + ranker.

Serving (the worker), replay and evaluation only talk to this interface, so algorithms are swappable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from streamrec.events import PRODUCT, Event
from streamrec.session_store import SessionContext


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float


@dataclass(frozen=True)
class RecommendationRequest:
    """Everything a recommender may use for one user at one moment (nothing from the future)."""

    user_id: str
    k: int
    kind: str = PRODUCT  # "product" or "tool": what to recommend
    context: SessionContext | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)  # item ids that must not be returned
    now_ms: int = 0
    trigger_item: str | None = None  # the item or tool of the triggering event, if any


class Recommender(ABC):
    """fit on an interactions frame, recommend for requests, find similar items, learn from the stream."""

    name: str = "recommender"
    version: str = "0"

    def fit(self, interactions: pd.DataFrame) -> Recommender:
        """Train on an interactions frame (see `model.interactions`); streaming models may ignore it."""
        return self

    @abstractmethod
    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        """Top-`k` items, best first, none of them in `request.exclude`."""

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        return [self.recommend(r) for r in requests]

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        """Items most similar to `item_id`; empty when the model knows nothing about it."""
        return []

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """Learn from live events (streaming models); the default is a model frozen at `fit`."""
        return None


class RecommenderSource(Protocol):
    """Hands out the recommender to use for the next batch (lets the worker hot-swap models)."""

    def current(self) -> Recommender: ...


@dataclass
class StaticRecommenderSource:
    """Always the same recommender (replay, evaluation, tests)."""

    recommender: Recommender

    def current(self) -> Recommender:
        return self.recommender
