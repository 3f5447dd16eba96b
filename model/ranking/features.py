"""Ranker inputs, built the same way for training examples and for serving candidates.

Dense features: session activity (page views, session time), price (the item's and against the
session's mean), the retrieval score, the item's popularity, how much of the session was in the
item's category, and the hour as sin/cos. ("Already seen in the session" is left out on purpose: training
examples are taken at an item's first view, where it is never true, so the ranker could not learn it.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from model.two_tower.features import FeatureSpec, time_features
from streamrec.session_store import SessionContext

RANKER_DENSE_FEATURES = (
    "log_page_views", "log_session_seconds", "log_price", "log_price_vs_session", "retrieval_score",
    "log_popularity", "session_category_share", "hour_sin", "hour_cos",
)


class RankerConfig(BaseModel):
    """Hyperparameters of the wide & deep ranker and of its training examples (saved in the bundle)."""

    user_dim: int = Field(16, ge=1)
    item_dim: int = Field(16, ge=1)
    category_dim: int = Field(8, ge=1)
    hidden_units: tuple[int, ...] = (64, 32)
    l2: float = Field(1e-5, ge=0, description="L2 penalty on the embeddings (per example)")
    dropout: float = Field(0.2, ge=0, lt=1)
    negatives_per_positive: int = Field(4, ge=0, description="Random catalogue items sampled per conversion")
    # Off by default: retrieved negatives all have high retrieval scores while positives spread, so the
    # ranker learnt "high retrieval score = no conversion" (next-item HR@10 fell from 0.13 to 0.01 on sim).
    retrieved_negatives_per_positive: int = Field(
        0, ge=0, description="Items sampled per conversion from the two-tower's top `retrieved_pool` in its context")
    retrieved_pool: int = Field(200, ge=2)
    max_positive_weight: float = Field(50.0, ge=1, description="Cap on the class weight of conversions")
    epochs: int = Field(8, ge=1)
    patience: int = Field(2, ge=1)
    batch_size: int = Field(1024, ge=8)
    learning_rate: float = Field(2e-3, gt=0)
    holdout_fraction: float = Field(0.2, gt=0, lt=1, description="Latest examples, for the reported AUC")
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="Latest training examples, for early stopping")
    seed: int = 7


def ranker_inputs(spec: FeatureSpec, user_ids: Sequence[str], item_index: np.ndarray,
                  contexts: Sequence[SessionContext | None], retrieval_scores: np.ndarray,
                  now_ms: np.ndarray) -> dict[str, np.ndarray]:
    """One row per (query, candidate item): the ids the embeddings read plus `RANKER_DENSE_FEATURES`."""
    item_index = np.asarray(item_index, dtype=np.int64)
    n = len(item_index)
    price = np.asarray(spec.item_price, dtype=np.float64)[item_index]
    category = np.asarray(spec.item_category, dtype=np.int32)[item_index]
    # Serving repeats one context for all candidates of a trigger: compute each distinct context once.
    groups: dict[int, int] = {}
    group_of = np.fromiter((groups.setdefault(id(c), len(groups)) for c in contexts), dtype=np.int64, count=n)
    distinct = list({id(c): c for c in contexts}.values())
    session = np.zeros((len(distinct), 3))  # log page views, log session seconds, mean price (0 = unknown)
    shares = np.zeros((len(distinct), len(spec.categories)))
    for g, context in enumerate(distinct):
        if context is None:
            continue
        session[g] = (np.log1p(context.page_views), np.log1p(context.session_seconds), context.price_mean or 0.0)
        total = sum(context.categories.values())
        for name, count in context.categories.items():
            shares[g, spec.categories.get(name)] += count / total if total else 0.0
    shares[:, 0] = 0.0  # categories the model does not know say nothing about a known item's category
    dense = np.zeros((n, len(RANKER_DENSE_FEATURES)), dtype=np.float32)
    dense[:, 0] = session[group_of, 0]
    dense[:, 1] = session[group_of, 1]
    mean_price = session[group_of, 2]
    priced = (mean_price > 0) & (price > 0)
    dense[priced, 3] = np.log(price[priced] / mean_price[priced])
    dense[:, 6] = shares[group_of, category]
    dense[:, 2] = np.log1p(price)
    dense[:, 4] = retrieval_scores
    dense[:, 5] = np.asarray(spec.item_log_popularity, dtype=np.float32)[item_index]
    dense[:, 7:9] = time_features(np.asarray(now_ms, dtype=np.int64))[:, 0:2]
    return {"user": spec.users.lookup(user_ids), "item": item_index.astype(np.int32), "category": category,
            "dense": dense}
