"""The ranker's features of one trigger's candidates: one function, called by serving and by the example log.

Per source: present, reciprocal rank, score over the source's best score for the trigger (absent = 0, and the
present flag lets the network learn a default). Per item: popularity overall and in the last hour (log), age in
hours (log), price known. Per item in this session: seen (and how recently), is the trigger item, share of the
session's category views in its category, same category as the trigger item, log price over the session's mean
price. Per trigger: page views, session seconds, session length and the user's earlier items (logs): the session
context features of the first ranking notebook.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from model.hybrid.candidates import CandidateSet
from model.hybrid.item_stats import ItemStats

ITEM_FEATURES = (
    "log_popularity", "log_recent_popularity", "log_age_hours", "price_known", "in_session", "session_recency",
    "is_trigger_item", "category_share", "same_category_as_trigger", "log_price_over_session_mean",
    "log_page_views", "log_session_seconds", "log_session_items", "log_user_history", "sources_present",
)


def feature_names(sources: Sequence[str]) -> list[str]:
    per_source = [f"{s}:{what}" for s in sources for what in ("present", "reciprocal_rank", "relative_score")]
    return [*per_source, *ITEM_FEATURES]


def candidate_features(candidates: CandidateSet, sources: Sequence[str], stats: ItemStats) -> np.ndarray:
    """A (candidates x features) float32 matrix in `feature_names(sources)` order."""
    request, context = candidates.request, candidates.request.context
    n, width = len(candidates.items), 3 * len(sources)
    out = np.zeros((n, width + len(ITEM_FEATURES)), dtype=np.float32)
    if n == 0:
        return out
    column = {s: 3 * j for j, s in enumerate(sources)}
    for row, hits in enumerate(candidates.hits):
        for name, hit in hits.items():
            c = column[name]
            out[row, c] = 1.0
            out[row, c + 1] = 1.0 / (1 + hit.rank)
            out[row, c + 2] = hit.score / hit.top_score if hit.top_score > 0 and hit.score > 0 else 0.0
    now = max(request.now_ms, 0)
    recent = list(context.recent_items) if context else []
    position = {}
    for p, item in enumerate(recent):
        position.setdefault(item, p)
    categories = dict(context.categories) if context else {}
    category_total = sum(categories.values()) or 1
    trigger_category = stats.category.get(request.trigger_item or "")
    price_mean = context.price_mean if context and context.price_mean else None
    session = (
        math.log1p(context.page_views) if context else 0.0,
        math.log1p(context.session_seconds) if context else 0.0,
        math.log1p(len(recent)),
        math.log1p(len(context.user_recent_items)) if context else 0.0,
    )
    base = width
    for row, item in enumerate(candidates.items):
        category = stats.category.get(item)
        price = stats.price.get(item)
        first = stats.first_seen_ms.get(item)
        out[row, base:] = (
            math.log1p(stats.total.get(item, 0.0)),
            math.log1p(stats.recent_count(item, now)),
            math.log1p(max(0, now - first) / 3600_000) if first is not None else 0.0,
            1.0 if price is not None else 0.0,
            1.0 if item in position else 0.0,
            1.0 / (1 + position[item]) if item in position else 0.0,
            1.0 if item == request.trigger_item else 0.0,
            categories.get(category, 0) / category_total if category else 0.0,
            1.0 if category is not None and category == trigger_category else 0.0,
            float(np.clip(math.log(price / price_mean), -3, 3)) if price and price_mean else 0.0,
            *session,
            float(len(candidates.hits[row])),
        )
    return out
