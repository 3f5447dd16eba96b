"""The one interface every recommender implements, from popularity to the two-tower + ranker.

Serving (the worker), replay and evaluation only talk to this interface, so algorithms are swappable.
A fitted model that can be served from disk implements `save`; `model.saved_models` loads it back by kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import pandas as pd

from streamrec.events import PRODUCT, TOOL, Event
from streamrec.session_store import SessionContext


@dataclass(frozen=True, slots=True)  # slots: made by the hundred per trigger per source (half the cost to build)
class ScoredItem:
    item_id: str
    score: float


class RankedColumns(NamedTuple):
    """One answer as columns: item ids best first and their scores (a list or a float array), no object per item.

    What the hybrid's union reads from its sources (some 57,000 candidates per served batch): a `ScoredItem` each
    cost about 350 ns to build and as much to read back."""

    items: list[str]
    scores: Sequence[float]

    @classmethod
    def of(cls, ranked: Sequence[ScoredItem]) -> RankedColumns:
        return cls([s.item_id for s in ranked], [s.score for s in ranked])

    def scored(self) -> list[ScoredItem]:
        return [ScoredItem(item, float(score)) for item, score in zip(self.items, self.scores, strict=True)]


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

    def recommend_columns(self, requests: Sequence[RecommendationRequest]) -> list[RankedColumns]:
        """`recommend_batch`'s answers as columns. Candidate sources on the hot path override this (and answer
        `recommend_batch` from it) to build no `ScoredItem` per candidate."""
        return [RankedColumns.of(answer) for answer in self.recommend_batch(requests)]

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        """Items most similar to `item_id`; empty when the model knows nothing about it."""
        return []

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """Learn from live events (streaming models); the default is a model frozen at `fit`."""
        return None

    def save(self, folder: Path) -> Path:
        """Write the fitted model into `folder`, its manifest (`model.bundle_paths.write_manifest`) last, so
        `model.saved_models.load_recommender(folder)` rebuilds it; returns `folder`."""
        raise NotImplementedError(f"{self.name} cannot be saved (its state lives elsewhere, or it has none)")


class WithFallback(Recommender):
    """Serves `model`, handing `fallback` the requests of other kinds (tools) and those `model` leaves empty.

    Both observe the stream, so the streaming fallback stays current while an offline model serves.
    """

    def __init__(self, model: Recommender, fallback: Recommender) -> None:
        self.model = model
        self.fallback = fallback
        self.name, self.version = model.name, model.version

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        ours = [i for i, r in enumerate(requests) if r.kind == PRODUCT]
        results: list[list[ScoredItem]] = [[] for _ in requests]
        for i, answer in zip(ours, self.model.recommend_batch([requests[i] for i in ours]), strict=True):
            results[i] = answer
        # Short answers are topped up too, not only empty ones: a model that knows little yet (a streaming index
        # after Redis came back empty) must not leave a trigger with fewer items than the fallback can give.
        return topped_up(results, requests, self.fallback)

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        found = self.model.similar_items(item_id, k, kind) if kind == PRODUCT else []
        return found or self.fallback.similar_items(item_id, k, kind)

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        self.fallback.observe(events, contexts)
        self.model.observe(events, contexts)


def topped_up(results: list[list[ScoredItem]], requests: Sequence[RecommendationRequest],
              fallback: Recommender) -> list[list[ScoredItem]]:
    """Every answer shorter than its request's k filled up from `fallback` (in one batch call), without repeats."""
    left = [i for i, answer in enumerate(results) if len(answer) < requests[i].k]
    for i, extra in zip(left, fallback.recommend_batch([requests[i] for i in left]), strict=True):
        have = {s.item_id for s in results[i]}
        results[i] = [*results[i], *(s for s in extra if s.item_id not in have)][: requests[i].k]
    return results


class ToolsFrom(Recommender):
    """Tool requests to `tools` (topped up by `rest` where short), every other request to `rest`; named after
    `rest`, which it stands in for. Both observe the stream."""

    def __init__(self, tools: Recommender, rest: Recommender) -> None:
        self.tools = tools
        self.rest = rest
        self.name, self.version = rest.name, rest.version

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        tools = [i for i, r in enumerate(requests) if r.kind == TOOL]
        results: list[list[ScoredItem]] = [[] for _ in requests]
        for i, answer in zip(tools, self.tools.recommend_batch([requests[i] for i in tools]), strict=True):
            results[i] = answer
        return topped_up(results, requests, self.rest)

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        return self.rest.similar_items(item_id, k, kind)

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        self.rest.observe(events, contexts)
        self.tools.observe(events, contexts)


class RecommenderSource(Protocol):
    """Hands out the recommender to use for the next batch (lets the worker hot-swap models)."""

    def current(self) -> Recommender: ...

    @property
    def served(self) -> Recommender:
        """The recommender serving now, without `current()`'s checks (no reload starts): for reports, metrics and
        shutdown, which may run outside the loop."""
        ...


@dataclass
class StaticRecommenderSource:
    """Always the same recommender (replay, evaluation, tests)."""

    recommender: Recommender

    def current(self) -> Recommender:
        return self.recommender

    @property
    def served(self) -> Recommender:
        return self.recommender
