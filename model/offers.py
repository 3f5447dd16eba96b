"""Multi-attribute offers: recommend a category, a brand or a price band, not only an item.

An offer's score for a query is the log-sum-exp of the two-tower scores of its items (a soft
maximum: one strongly matching item makes the offer relevant); price bands are quantile bands of the
known prices (`price_band_edges`, the FeatureSpec's). The replay's offer evaluation uses these same
two definitions on a notification's listed items. Evaluation follows the product's notebook: for
each offer, the AUC of its score at separating the conversions that fell in it from those that did
not, averaged with each offer weighted by its number of events (`weighted_auc`); the cold-start
slice repeats it over offers that were rare in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.metrics import weighted_auc
from model.two_tower.features import FeatureSpec

OFFER_TYPES = ("category", "brand", "price_band")


def log_sum_exp(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """The offer score from its items' logits: a soft maximum, stable for large logits (-inf for no items)."""
    logits = np.asarray(logits, dtype=np.float64)
    top = np.max(logits, axis=axis, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(safe + np.log(np.exp(logits - safe).sum(axis=axis, keepdims=True)), axis=axis)


def price_band_edges(prices: Sequence[float], bands: int = 5) -> list[float]:
    """Inner quantile edges of the known prices (duplicates merged), as `build_feature_spec` draws them."""
    if not len(prices):
        return []
    inner = np.quantile(np.asarray(prices, dtype=float), np.linspace(0, 1, bands + 1)[1:-1])
    return [float(e) for e in np.unique(inner)]


def price_band_names(edges: Sequence[float]) -> list[str]:
    """Offer names of the price bands: index 0 is the unknown price, band b holds [edges[b-1], edges[b])."""
    bounds = [0.0, *edges, float("inf")]
    return ["[UNK]"] + [f"{bounds[b - 1]:.0f}-{bounds[b]:.0f}" if np.isfinite(bounds[b]) else f"{bounds[b - 1]:.0f}+"
                        for b in range(1, len(edges) + 2)]


def price_band_of(prices: Sequence[float], edges: Sequence[float]) -> np.ndarray:
    """1-based band of each price (the FeatureSpec's rule: searchsorted right, capped at the last band)."""
    bands = np.searchsorted(np.asarray(edges, dtype=float), np.asarray(prices, dtype=float), side="right") + 1
    return np.minimum(bands, len(edges) + 1).astype(np.int32)


def item_offers(spec: FeatureSpec, offer_type: str) -> tuple[np.ndarray, list[str]]:
    """Per vocabulary item, the index of its offer of `offer_type`, and the offers' names."""
    if offer_type == "category":
        return np.asarray(spec.item_category), spec.categories.tokens
    if offer_type == "brand":
        return np.asarray(spec.item_brand), spec.brands.tokens
    if offer_type == "price_band":
        return np.asarray(spec.item_price_band), price_band_names(spec.price_band_edges)
    raise ValueError(f"offer_type must be one of {', '.join(OFFER_TYPES)}, not {offer_type!r}")


def offer_scores(spec: FeatureSpec, item_vectors: np.ndarray, queries: np.ndarray, offer_type: str,
                 temperature: float) -> np.ndarray:
    """(queries, offers) soft-max of item scores per offer; the unknown offer (0) scores -inf."""
    offer_of, names = item_offers(spec, offer_type)
    logits = (queries @ item_vectors[1:].T) / temperature
    offer_of = offer_of[1:]
    out = np.full((len(queries), len(names)), -np.inf, dtype=np.float64)
    for offer in np.unique(offer_of):
        if offer == 0:
            continue
        out[:, offer] = log_sum_exp(logits[:, offer_of == offer], axis=1)
    return out


def recommend_offers(spec: FeatureSpec, item_vectors: np.ndarray, query: np.ndarray, offer_type: str, k: int,
                     temperature: float) -> list[tuple[str, float]]:
    """The `k` best offers of one type for one query vector."""
    scores = offer_scores(spec, item_vectors, query[None, :], offer_type, temperature)[0]
    _, names = item_offers(spec, offer_type)
    order = [i for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])][:k]
    return [(names[i], float(scores[i])) for i in order]


@dataclass(frozen=True)
class OfferEvaluation:
    offer_type: str
    weighted_auc: float
    offers: int
    events: int
    rare_weighted_auc: float  # the cold-start slice: offers with fewer than `rare_below` training events
    rare_offers: int
    rare_at_most: float  # training events of the rarest offers' slice


def evaluate_offers(spec: FeatureSpec, item_vectors: np.ndarray, queries: np.ndarray, converted_items: np.ndarray,
                    train_item_counts: np.ndarray, temperature: float, rare_below: float | None = None,
                    offer_types: Sequence[str] = OFFER_TYPES, negatives_per_positive: int = 10,
                    seed: int = 0) -> list[OfferEvaluation]:
    """Weighted AUC per offer type over held-out conversions (query vector, item index bought)."""
    results = []
    for offer_type in offer_types:
        offer_of, names = item_offers(spec, offer_type)
        scores = offer_scores(spec, item_vectors, queries, offer_type, temperature)
        truth = offer_of[converted_items]
        train_counts = np.bincount(offer_of, weights=train_item_counts, minlength=len(names))
        # Rare offers (the cold-start slice): by default the quarter of offers with the fewest training events.
        threshold = rare_below if rare_below is not None else float(np.quantile(train_counts[1:], 0.25))
        groups, rare = {}, {}
        rng = np.random.default_rng(seed)
        for offer in range(1, len(names)):
            positives = np.flatnonzero(truth == offer)
            if len(positives) == 0:
                continue
            # The same number of negatives per positive for every offer: a group's size, which
            # `weighted_auc` weighs by, is then proportional to the offer's events.
            others = np.flatnonzero(truth != offer)
            negatives = rng.choice(others, min(len(others), negatives_per_positive * len(positives)), replace=False)
            rows = np.concatenate([positives, negatives])
            groups[names[offer]] = ((truth[rows] == offer).astype(int), scores[rows, offer])
            if train_counts[offer] <= threshold:
                rare[names[offer]] = groups[names[offer]]
        results.append(OfferEvaluation(
            offer_type, weighted_auc(groups), len(groups), len(truth), weighted_auc(rare) if rare else float("nan"),
            len(rare), threshold,
        ))
    return results
