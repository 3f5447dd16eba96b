"""Per-user evaluation for data without sessions: a temporal holdout (newest share of each user's events),
or a given train/valid split (ASOS). Each user gets one top-k list, excluding what they had in train."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from measurement.evaluation.scoring import MetricRow, coverage_at_k, popularity_percentile_at_k, rows_for
from model.recommender import RecommendationRequest, Recommender
from streamrec.session_store import SessionContext


def temporal_holdout(frame: pd.DataFrame, share: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the newest `share` of each user's events (at least one, for users with two or more)."""
    ordered = frame.sort_values(["user_id", "ts"], kind="mergesort")
    position = ordered.groupby("user_id").cumcount(ascending=False)  # 0 = newest
    size = ordered["user_id"].map(ordered["user_id"].value_counts())
    held = np.where(size >= 2, np.maximum(1, np.floor(size * share)), 0)
    is_test = position < held
    return ordered[~is_test].reset_index(drop=True), ordered[is_test].reset_index(drop=True)


def user_request(user_id: str, history: Sequence[str], k: int, now_ms: int = 0) -> RecommendationRequest:
    """A user's request: their history newest first as context, and everything they had excluded."""
    recent = tuple(reversed(list(history)[-50:]))
    context = SessionContext(user_id=user_id, session_id=f"holdout-{user_id}", recent_items=recent,
                             user_recent_items=recent, events=len(history))
    return RecommendationRequest(user_id=user_id, k=k, context=context, exclude=frozenset(history), now_ms=now_ms,
                                 trigger_item=recent[0] if recent else None)


def evaluate_users(
    model_name: str, recommender: Recommender, train: pd.DataFrame, test: pd.DataFrame, ks: Sequence[int],
    batch: int = 256, progress: bool = True,
) -> list[MetricRow]:
    """Rank metrics of each test user's top-k against their held-out items, plus coverage and popularity bias."""
    depth = max(ks)
    history = train.sort_values("ts", kind="mergesort").groupby("user_id")["item_id"].apply(list).to_dict()
    truth = test.groupby("user_id")["item_id"].apply(set).to_dict()
    users = sorted(truth)
    now_ms = int(pd.to_datetime(train["ts"], utc=True).max().timestamp() * 1000) if len(train) else 0
    lists: list[list[str]] = []
    for start in tqdm(range(0, len(users), batch), desc=f"{model_name}: users", unit="batch", disable=not progress):
        chunk = users[start : start + batch]
        requests = [user_request(u, [str(i) for i in history.get(u, [])], depth, now_ms) for u in chunk]
        lists += [[s.item_id for s in ranked] for ranked in recommender.recommend_batch(requests)]
    pairs = [(ranked, {str(i) for i in truth[u]} - set(map(str, history.get(u, [])))) for u, ranked in
             zip(users, lists, strict=True)]
    rows = rows_for(model_name, "holdout", "all", pairs, ks)
    counts = train["item_id"].astype(str).value_counts()
    ranks = counts.rank(method="average")
    percentiles = ((ranks - 1) / max(len(counts) - 1, 1) * 100).to_dict()
    catalogue = len(set(train["item_id"].astype(str)) | set(test["item_id"].astype(str)))
    for k in ks:
        rows.append(MetricRow(model_name, "all", "all", "coverage", k, coverage_at_k(lists, catalogue, k), len(lists)))
        rows.append(MetricRow(model_name, "all", "all", "popularity_pct", k,
                              popularity_percentile_at_k(lists, percentiles, k), len(lists)))
    return rows
