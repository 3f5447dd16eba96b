"""Score any `Recommender` on held-out items per user: Recall, NDCG and HR at several k, one row per model."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from model.metrics import hit_rate_at_k, ndcg_at_k, recall_at_k
from model.recommender import RecommendationRequest, Recommender

KS = (10, 20, 100)


def evaluate_holdout(recommender: Recommender, relevant: Mapping[str, set[str]], exclude: Mapping[str, set[str]],
                     ks: Sequence[int] = KS, batch_size: int = 256, progress: bool = True,
                     now_ms: int = 0) -> dict[str, float]:
    """Mean metrics over users with held-out items; each user's `exclude` items are never recommended."""
    users = sorted(relevant)
    depth = max(ks)
    sums: dict[str, float] = {f"{m}@{k}": 0.0 for m in ("recall", "ndcg", "hr") for k in ks}
    started = time.monotonic()
    for start in tqdm(range(0, len(users), batch_size), desc=f"evaluate {recommender.name}", disable=not progress):
        chunk = users[start : start + batch_size]
        requests = [RecommendationRequest(u, depth, exclude=frozenset(exclude.get(u, ())), now_ms=now_ms)
                    for u in chunk]
        for user, ranked in zip(chunk, recommender.recommend_batch(requests), strict=True):
            items = [s.item_id for s in ranked]
            for k in ks:
                sums[f"recall@{k}"] += recall_at_k(items, relevant[user], k)
                sums[f"ndcg@{k}"] += ndcg_at_k(items, relevant[user], k)
                sums[f"hr@{k}"] += hit_rate_at_k(items, relevant[user], k)
    elapsed = time.monotonic() - started
    out = {name: value / max(1, len(users)) for name, value in sums.items()}
    out["users"] = float(len(users))
    out["ms_per_user"] = 1000 * elapsed / max(1, len(users))
    return out


def relevant_and_exclude(train: pd.DataFrame, test: pd.DataFrame,
                         test_events: Sequence[str] = ("purchase",)) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Held-out items per user (minus what they already bought in train) and the train purchases to exclude."""
    bought = train[train["event_type"] == "purchase"].groupby("user_id")["item_id"].agg(lambda s: set(s.astype(str)))
    held = test[test["event_type"].isin(test_events)].groupby("user_id")["item_id"].agg(lambda s: set(s.astype(str)))
    exclude = {str(u): items for u, items in bought.items()}
    relevant = {str(u): items - exclude.get(str(u), set()) for u, items in held.items()}
    return {u: items for u, items in relevant.items() if items}, exclude


def metrics_table(rows: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """One row per model, metric columns rounded for reading."""
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table.apply(lambda c: np.round(c, 4))


def evaluate_next_item(recommender: Recommender, frame: pd.DataFrame, since: pd.Timestamp, ks: Sequence[int] = KS,
                       max_events: int = 5000, batch_size: int = 256, progress: bool = True,
                       event_types: Sequence[str] | None = None) -> dict[str, float]:
    """At each product interaction after `since`: is that item in the top k, given the context right before it?

    This is what a trigger asks in serving (session context from Redis); HR@k = Recall@k with one target.
    """
    from model.two_tower.examples import ITEM_EVENTS, contexts_before, sort_by_time
    from model.two_tower.features import utc_ms

    frame = sort_by_time(frame)
    contexts = contexts_before(frame)
    targets_of = event_types or ITEM_EVENTS  # e.g. ("purchase",): the next conversion only
    mask = (frame["ts"] >= since) & frame["event_type"].isin(targets_of) & frame["item_id"].notna()
    rows = np.flatnonzero(mask.to_numpy())[:max_events]
    ts = utc_ms(frame["ts"])
    targets = frame["item_id"].astype(str).to_numpy()
    depth = max(ks)
    sums = {f"{m}@{k}": 0.0 for m in ("hr", "ndcg") for k in ks}
    for start in tqdm(range(0, len(rows), batch_size), desc=f"next item {recommender.name}", disable=not progress):
        chunk = rows[start : start + batch_size]
        requests = [RecommendationRequest(contexts[r].user_id, depth, context=contexts[r], now_ms=int(ts[r]))
                    for r in chunk]
        for r, ranked in zip(chunk, recommender.recommend_batch(requests), strict=True):
            items = [s.item_id for s in ranked]
            for k in ks:
                sums[f"hr@{k}"] += hit_rate_at_k(items, {targets[r]}, k)
                sums[f"ndcg@{k}"] += ndcg_at_k(items, {targets[r]}, k)
    out = {name: value / max(1, len(rows)) for name, value in sums.items()}
    out["events"] = float(len(rows))
    return out
