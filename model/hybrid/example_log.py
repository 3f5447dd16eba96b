"""Training examples for the ranker, logged from the live path: a recommender wrapper that records what the hybrid's
candidate code produced for each trigger while a training window is replayed through the worker's pipeline.

The wrapper answers with the untrained order (reciprocal-rank fusion), so the pipeline's filters and cooldowns act
on the log as they act in serving. `labelled` then joins each trigger to what its session did next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from model.hybrid.candidates import reciprocal_rank_order
from model.hybrid.item_stats import PRODUCT_EVENTS
from model.hybrid.recommender import Featured, HybridRecommender, ranked
from model.interactions import utc_ms
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PRODUCT, Event
from streamrec.session_store import SessionContext


@dataclass
class LoggedTrigger:
    session_id: str
    now_ms: int
    trigger_item: str | None
    items: list[str]
    features: np.ndarray
    fusion: np.ndarray | None = None  # the untrained order's score per candidate (the retrieval score)


@dataclass
class ExampleLog(Recommender):
    """Wraps a `HybridRecommender` with no ranker; every product trigger's candidates and features are kept."""

    hybrid: HybridRecommender
    logged: list[LoggedTrigger] = field(default_factory=list)
    name: str = "hybrid-example-log"
    version: str = "1"

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        self.hybrid.observe(events, contexts)

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        products = [r for r in requests if r.kind == PRODUCT and r.context is not None]
        featured: list[Featured] = self.hybrid.candidates(products)
        answers: dict[int, list[ScoredItem]] = {}
        for request, one in zip(products, featured, strict=True):
            fusion = reciprocal_rank_order(one.candidates)
            self.logged.append(LoggedTrigger(request.context.session_id, request.now_ms, request.trigger_item,
                                             one.candidates.items, one.features, fusion))
            answers[id(request)] = ranked(one.candidates.items, fusion, request.k)
        return [answers.get(id(r), []) for r in requests]


@dataclass
class Examples:
    """Padded arrays for `train_ranker`: features (T x C x F), mask (T x C), positive index (T), in time order."""

    features: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    logged: int  # triggers logged
    with_next_item: int  # of which the session went on to a next item
    next_in_candidates: int  # of which the next item was among the candidates (the examples kept)


def next_items(frame: pd.DataFrame, event_types: tuple[str, ...] = PRODUCT_EVENTS
               ) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per session: its events' times (ms, sorted) and items, of `event_types` (product events unless told), to
    look up what came after a trigger."""
    rows = frame[frame["event_type"].isin(event_types) & frame["item_id"].notna()]
    rows = rows.sort_values("ts", kind="mergesort")
    ts = utc_ms(rows["ts"])
    items = rows["item_id"].astype(str).to_numpy()  # once: per session it made labelling quadratic (hours on 1M)
    out: dict[str, tuple[np.ndarray, list[str]]] = {}
    for session, index in rows.groupby(rows["session_id"].astype(str), sort=False).indices.items():
        out[session] = (ts[index], items[index].tolist())
    return out


def padded(triggers: Sequence[LoggedTrigger], width: int) -> tuple[np.ndarray, np.ndarray]:
    """The triggers' feature matrices (`width` features) stacked, T x C x F with zero padding, and the mask of real
    candidates (T x C)."""
    size = max((len(t.items) for t in triggers), default=1)
    features = np.zeros((len(triggers), size, width), np.float32)
    mask = np.zeros((len(triggers), size), bool)
    for row, trigger in enumerate(triggers):
        features[row, : len(trigger.items)] = trigger.features
        mask[row, : len(trigger.items)] = True
    return features, mask


def feature_width(logged: Sequence[LoggedTrigger]) -> int:
    return logged[0].features.shape[1] if logged else 0


def labelled(logged: Sequence[LoggedTrigger], frame: pd.DataFrame) -> Examples:
    """Each trigger's positive = its session's next product item after the trigger time that is not the trigger's
    own item (the replay's next-item target); triggers without one, or whose next item is not a candidate, are
    dropped (counted)."""
    sessions = next_items(frame)
    kept: list[tuple[LoggedTrigger, int]] = []
    with_next = 0
    for trigger in sorted(logged, key=lambda t: t.now_ms):
        times, items = sessions.get(trigger.session_id, (np.empty(0, np.int64), []))
        at = int(np.searchsorted(times, trigger.now_ms, side="right"))
        while at < len(items) and items[at] == trigger.trigger_item:
            at += 1
        if at >= len(items):
            continue
        with_next += 1
        try:
            kept.append((trigger, trigger.items.index(items[at])))
        except ValueError:
            continue
    features, mask = padded([trigger for trigger, _ in kept], feature_width(logged))
    labels = np.array([label for _, label in kept], np.int32)
    return Examples(features, mask, labels, len(logged), with_next, len(kept))
