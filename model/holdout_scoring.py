"""The one holdout scorer: each user's top-k list against what they did after the training data.

Training picks models with it (`model.training.choose_ranker_blend`, at trigger moments) and every
measurement protocol reports with it (ASOS, the simulated shop, the per-user temporal holdout), so a
validation figure and a report figure are the same computation. Results are `model.metrics.MetricRow`s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from model.metrics import KS, MetricRow, coverage_at_k, popularity_percentile_at_k, rows_for
from model.recommender import RecommendationRequest, Recommender
from streamrec.session_store import SessionContext


@dataclass(frozen=True)
class HeldOut:
    """Per user: the held-out items to find, the items never to recommend, and the training history."""

    relevant: dict[str, set[str]]
    exclude: dict[str, set[str]]
    history: dict[str, list[str]]  # train items, oldest first (the request's context when one is sent)
    now_ms: int  # the requests' clock
    train_items: pd.Series  # every train interaction's item id (popularity percentiles)
    catalogue_size: int  # items in train or test (coverage)


def _history(train: pd.DataFrame) -> dict[str, list[str]]:
    ordered = train.sort_values("ts", kind="mergesort")
    return {str(u): [str(i) for i in g] for u, g in ordered.groupby("user_id")["item_id"]}


def _catalogue(train: pd.DataFrame, test: pd.DataFrame) -> int:
    return len(set(train["item_id"].astype(str)) | set(test["item_id"].astype(str)))


def held_out_purchases(train: pd.DataFrame, test: pd.DataFrame, test_events: Sequence[str] = ("purchase",),
                       now_ms: int = 0) -> HeldOut:
    """Test `test_events` items per user minus what they bought in train; train purchases are excluded.

    Users left with nothing to find are dropped (ASOS: valid purchases not bought in train).
    """
    bought = train[train["event_type"] == "purchase"].groupby("user_id")["item_id"].agg(lambda s: set(s.astype(str)))
    held = test[test["event_type"].isin(test_events)].groupby("user_id")["item_id"].agg(lambda s: set(s.astype(str)))
    exclude = {str(u): items for u, items in bought.items()}
    relevant = {str(u): items - exclude.get(str(u), set()) for u, items in held.items()}
    return HeldOut({u: items for u, items in relevant.items() if items}, exclude, _history(train), now_ms,
                   train["item_id"].astype(str), _catalogue(train, test))


def held_out_history(train: pd.DataFrame, test: pd.DataFrame) -> HeldOut:
    """Every test item per user minus their whole train history, which is excluded; the clock is train's end."""
    history = _history(train)
    truth = test.groupby("user_id")["item_id"].agg(lambda s: set(s.astype(str))).to_dict()
    relevant = {str(u): items - set(history.get(str(u), [])) for u, items in truth.items()}
    exclude = {u: set(history.get(u, [])) for u in relevant}
    now_ms = int(pd.to_datetime(train["ts"], utc=True).max().timestamp() * 1000) if len(train) else 0
    return HeldOut(relevant, exclude, history, now_ms, train["item_id"].astype(str), _catalogue(train, test))


def user_request(user_id: str, history: Sequence[str], k: int, exclude: frozenset[str], now_ms: int = 0,
                 ) -> RecommendationRequest:
    """A user's request with their history newest first as context (what the worker's Redis would hold)."""
    recent = tuple(reversed(list(history)[-50:]))
    context = SessionContext(user_id=user_id, session_id=f"holdout-{user_id}", recent_items=recent,
                             user_recent_items=recent, events=len(history))
    return RecommendationRequest(user_id=user_id, k=k, context=context, exclude=exclude, now_ms=now_ms,
                                 trigger_item=recent[0] if recent else None)


def score_users(model_name: str, recommender: Recommender, held: HeldOut, ks: Sequence[int] = KS,
                with_context: bool = False, users: Sequence[str] | None = None, batch: int = 256,
                progress: bool = True) -> list[MetricRow]:
    """Rank metrics of each user's top-k against their held-out items, coverage, popularity bias, ms per user.

    Without context a request carries the user id alone (the model falls back on what it knows of the user,
    as ASOS asks); with context it carries the user's train history as the session.
    """
    users = sorted(held.relevant) if users is None else list(users)
    depth = max(ks)
    lists: list[list[str]] = []
    started = time.monotonic()
    for start in tqdm(range(0, len(users), batch), desc=f"{model_name}: users", unit="batch", disable=not progress):
        chunk = users[start : start + batch]
        if with_context:
            requests = [user_request(u, held.history.get(u, []), depth, frozenset(held.exclude.get(u, ())),
                                     held.now_ms) for u in chunk]
        else:
            requests = [RecommendationRequest(u, depth, exclude=frozenset(held.exclude.get(u, ())),
                                              now_ms=held.now_ms) for u in chunk]
        lists += [[s.item_id for s in ranked] for ranked in recommender.recommend_batch(requests)]
    elapsed = time.monotonic() - started
    rows = rows_for(model_name, "holdout", "all", [(ranked, held.relevant[u]) for u, ranked in
                                                   zip(users, lists, strict=True)], ks)
    counts = held.train_items.value_counts()
    ranks = counts.rank(method="average")
    percentiles = ((ranks - 1) / max(len(counts) - 1, 1) * 100).to_dict()
    for k in ks:
        rows.append(MetricRow(model_name, "all", "all", "coverage", k, coverage_at_k(lists, held.catalogue_size, k),
                              len(lists)))
        rows.append(MetricRow(model_name, "all", "all", "popularity_pct", k,
                              popularity_percentile_at_k(lists, percentiles, k), len(lists)))
    rows.append(MetricRow(model_name, "all", "all", "ms_per_user", None, 1000 * elapsed / max(1, len(users)),
                          len(users)))
    return rows


def score_next_items(model_name: str, recommender: Recommender, frame: pd.DataFrame, since: pd.Timestamp,
                     ks: Sequence[int] = KS, max_events: int = 5000, batch: int = 256, progress: bool = True,
                     event_types: Sequence[str] | None = None, target: str = "next") -> list[MetricRow]:
    """At each product interaction after `since`: is that item in the top k, given the context right before it?

    This is what a trigger asks in serving (session context from Redis); HR@k = recall@k with one target.
    """
    from model.two_tower.examples import ITEM_EVENTS, contexts_before, sort_by_time
    from model.two_tower.features import utc_ms

    frame = sort_by_time(frame)
    contexts = contexts_before(frame)
    targets_of = event_types or ITEM_EVENTS  # e.g. ("purchase",): the next conversion only
    mask = (frame["ts"] >= since) & frame["event_type"].isin(targets_of) & frame["item_id"].notna()
    positions = np.flatnonzero(mask.to_numpy())[:max_events]
    ts = utc_ms(frame["ts"])
    items = frame["item_id"].astype(str).to_numpy()
    depth = max(ks)
    pairs: list[tuple[list[str], set[str]]] = []
    for start in tqdm(range(0, len(positions), batch), desc=f"next item {model_name}", disable=not progress):
        chunk = positions[start : start + batch]
        requests = [RecommendationRequest(contexts[r].user_id, depth, context=contexts[r], now_ms=int(ts[r]))
                    for r in chunk]
        pairs += [([s.item_id for s in ranked], {items[r]}) for r, ranked in
                  zip(chunk, recommender.recommend_batch(requests), strict=True)]
    return [r for r in rows_for(model_name, target, "all", pairs, ks) if r.metric in ("HR", "MRR", "NDCG")]
