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
    return batch_features([candidates], sources, stats)[0]


def batch_features(sets: Sequence[CandidateSet], sources: Sequence[str], stats: ItemStats) -> list[np.ndarray]:
    """Every set's (candidates x features) matrix, built as one (all candidates x features) array column by column
    (one dictionary read per distinct item of the batch and statistic, the arithmetic in NumPy); each returned
    matrix is a view of its rows, so a ranker can score the whole batch in one call on `np.concatenate` or on the
    base array."""
    sizes = [len(s.items) for s in sets]
    n, width = sum(sizes), 3 * len(sources)
    out = np.zeros((n, width + len(ITEM_FEATURES)), dtype=np.float32)
    starts = np.cumsum([0, *sizes])
    if n == 0:
        return [out[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]
    items: list[str] = [item for candidates in sets for item in candidates.items]
    hits_per_row = np.zeros(n)
    for j, name in enumerate(sources):
        ranks = np.concatenate([s.ranks[name] for s in sets])
        scores = np.concatenate([s.scores[name] for s in sets])
        tops = np.repeat([s.top_scores[name] for s in sets], sizes)
        present = ranks >= 0
        hits_per_row += present
        out[:, 3 * j] = present
        out[:, 3 * j + 1] = np.where(present, 1.0 / (1.0 + np.maximum(ranks, 0)), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, 3 * j + 2] = np.where(present & (tops > 0) & (scores > 0), scores / tops, 0.0)

    # Per trigger, repeated over its candidates.
    per_set = [_trigger_columns(s, stats) for s in sets]
    now = np.repeat([p[0] for p in per_set], sizes).astype(np.float64)
    session = np.repeat(np.asarray([p[1] for p in per_set], np.float64).reshape(-1, 4), sizes, axis=0)
    price_mean = np.repeat([p[2] for p in per_set], sizes).astype(np.float64)

    # Per item: one read of each statistic per distinct item of the batch (triggers share most candidates), then
    # spread to the rows by the item's code.
    distinct: dict[str, int] = dict.fromkeys(items)  # first-seen order; values become codes below
    for code, item in enumerate(distinct):
        distinct[item] = code
    codes = np.fromiter(map(distinct.__getitem__, items), np.int64, n)
    recent = [stats.recent.get(item) for item in distinct]
    recent_count = np.array([r[0] if r else 0.0 for r in recent])[codes]
    recent_known = np.array([r is not None for r in recent])[codes]
    recent_as_of = np.where(recent_known, np.array([r[1] if r else 0 for r in recent], np.float64)[codes], now)
    first = np.array([stats.first_seen_ms.get(item, np.nan) for item in distinct], np.float64)[codes]
    price = np.array([stats.price.get(item, np.nan) for item in distinct], np.float64)[codes]
    total_count = np.array([stats.total.get(item, 0.0) for item in distinct])[codes]
    # Categories as codes of this batch (-1: none); a code past the last is "no such category".
    category_codes: dict[str, int] = {}
    item_category = np.array([category_codes.setdefault(c, len(category_codes)) if c else -1
                              for c in (stats.category.get(item) for item in distinct)], np.int64)
    row_category = item_category[codes]

    # Per item in its trigger's session: the session's few items and categories, matched against the trigger's rows.
    in_session = np.zeros(n)
    recency = np.zeros(n)
    is_trigger = np.zeros(n)
    share = np.zeros(n)
    same_category = np.zeros(n)
    spare = len(category_codes)  # rows with no category read this slot, always 0
    for a, b, (_, _, _, position, categories, total, trigger, trigger_category) in zip(
            starts[:-1], starts[1:], per_set, strict=True):
        rows = codes[a:b]
        seen = [(distinct[item], at) for item, at in position.items() if item in distinct]
        if seen:
            seen_codes = np.array([c for c, _ in seen])
            hit_row, hit_item = np.nonzero(rows[:, None] == seen_codes[None, :])
            in_session[a + hit_row] = 1.0
            recency[a + hit_row] = 1.0 / (1.0 + np.array([at for _, at in seen], np.float64)[hit_item])
        if trigger is not None and trigger in distinct:
            is_trigger[a:b] = rows == distinct[trigger]
        own = row_category[a:b]
        if categories:
            shares = np.zeros(spare + 1)
            for category, count in categories.items():
                code = category_codes.get(category)
                if code is not None:
                    shares[code] = count / total
            share[a:b] = shares[own]  # -1 (no category) reads the spare slot
        if trigger_category is not None and trigger_category in category_codes:
            same_category[a:b] = own == category_codes[trigger_category]

    with np.errstate(invalid="ignore", divide="ignore"):
        age_hours = np.maximum(0.0, now - first) / 3600_000
        decayed = recent_count * 0.5 ** (np.maximum(0.0, now - recent_as_of) / stats.half_life_ms)
        price_ratio = np.clip(np.log(price / price_mean), -3, 3)
    known_price = ~np.isnan(price)
    base = width
    out[:, base + 0] = np.log1p(total_count)
    out[:, base + 1] = np.log1p(decayed)
    out[:, base + 2] = np.where(np.isnan(first), 0.0, np.log1p(np.nan_to_num(age_hours)))
    out[:, base + 3] = known_price
    out[:, base + 4] = in_session
    out[:, base + 5] = recency
    out[:, base + 6] = is_trigger
    out[:, base + 7] = share
    out[:, base + 8] = same_category
    out[:, base + 9] = np.where(known_price & (price_mean > 0), np.nan_to_num(price_ratio), 0.0)
    out[:, base + 10: base + 14] = session
    out[:, base + 14] = hits_per_row
    return [out[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


def _trigger_columns(candidates: CandidateSet, stats: ItemStats) -> tuple:
    """One trigger's figures: its time, session context columns, mean price (NaN: none), the session's first
    position of each item, its category counts and their total, its trigger item and that item's category."""
    request, context = candidates.request, candidates.request.context
    recent = list(context.recent_items) if context else []
    position: dict[str, int] = {}
    for p, item in enumerate(recent):
        position.setdefault(item, p)
    categories = dict(context.categories) if context else {}
    session = (
        math.log1p(context.page_views) if context else 0.0,
        math.log1p(context.session_seconds) if context else 0.0,
        math.log1p(len(recent)),
        math.log1p(len(context.user_recent_items)) if context else 0.0,
    )
    price_mean = context.price_mean if context and context.price_mean else np.nan
    return (max(request.now_ms, 0), session, price_mean, position, categories, sum(categories.values()) or 1,
            request.trigger_item, stats.category.get(request.trigger_item or ""))
