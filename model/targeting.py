"""Promotion targeting: which users to notify about one item, scored with each user's latest session context.

Every candidate user's query vector (user id + their latest context from the Redis `SessionStore`)
is scored against the item's vector; the ranker, when the bundle has one, re-scores the pairs.
Users who already bought the item are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.ranking.features import ranker_inputs
from model.two_tower.examples import query_inputs
from model.two_tower.recommender import TwoTowerRecommender
from streamrec.events import PRODUCT
from streamrec.session_store import SessionContext, SessionStore


@dataclass(frozen=True)
class ScoredUser:
    user_id: str
    score: float


def target_users(recommender: TwoTowerRecommender, item_id: str, k: int,
                 contexts: Sequence[tuple[str, SessionContext | None]], now_ms: int = 0) -> list[ScoredUser]:
    """The `k` users (of `contexts`: (user_id, latest context or None)) most likely to want `item_id`."""
    vector = recommender.item_vector(item_id)
    if vector is None or not contexts:
        return []
    spec = recommender.spec
    users = [u for u, _ in contexts]
    user_contexts = [c or SessionContext(user_id=u, session_id="") for u, c in contexts]
    now = np.full(len(users), now_ms or max((c.last_ms for c in user_contexts), default=0), dtype=np.int64)
    queries = recommender.encode(query_inputs(spec, users, user_contexts, now))
    scores = queries @ vector
    if recommender.rank is not None:
        item_index = np.full(len(users), spec.items.get(item_id), dtype=np.int64)
        scores = recommender.rank(ranker_inputs(spec, users, item_index, user_contexts, scores, now))
    order = np.argsort(-scores, kind="stable")[:k]
    return [ScoredUser(users[i], float(scores[i])) for i in order]


def target_users_from_store(recommender: TwoTowerRecommender, store: SessionStore, item_id: str, k: int,
                            limit: int = 100_000) -> list[ScoredUser]:
    """`target_users` over the users known to Redis, with their latest contexts; buyers of the item excluded."""
    contexts = []
    for user in store.known_users(limit):
        if item_id in store.consumed(user, PRODUCT):
            continue
        contexts.append((user, store.latest_context(user)))
    return target_users(recommender, item_id, k, contexts)
