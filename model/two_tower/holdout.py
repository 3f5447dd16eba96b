"""Per-user holdout carved from the training data, for model selection that mirrors a holdout protocol.

ASOS evaluates "which items will each known user buy next, never re-showing what they bought": a
later time slice of the training file does not ask that question (and ASOS has no timestamps), so
the two-tower's early stopping and popularity prior are chosen on held-out purchases of sampled
training users instead, queried the way the evaluation queries them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.two_tower.examples import ITEM_EVENTS, RetrievalExamples, query_inputs, sort_by_time
from model.two_tower.features import FeatureSpec
from streamrec.events import PRODUCT
from streamrec.session_store import SessionContext


@dataclass
class UserHoldout:
    """The training interactions split in two: what the model fits on, and each sampled user's held-out rows."""

    fit_part: pd.DataFrame
    held_out: pd.DataFrame


def per_user_holdout(frame: pd.DataFrame, user_fraction: float = 0.15, item_fraction: float = 0.2, seed: int = 7,
                     events: tuple[str, ...] = ("purchase",)) -> UserHoldout:
    """For a random `user_fraction` of users with >= 2 `events` rows, hold out ~`item_fraction` of those rows.

    Every sampled user keeps at least one row in the fit part (a query needs a history), and holds out at least one.
    """
    rng = np.random.default_rng(seed)
    eligible = frame[(frame["kind"] == PRODUCT) & frame["event_type"].isin(events) & frame["item_id"].notna()]
    counts = eligible.groupby("user_id").size()
    candidates = np.sort(counts[counts >= 2].index.astype(str).to_numpy())
    chosen = set(rng.choice(candidates, size=int(round(len(candidates) * user_fraction)), replace=False))
    rows = eligible[eligible["user_id"].astype(str).isin(chosen)]
    rows = rows.iloc[rng.permutation(len(rows))]  # random order within each user: the first n_hold rows are held
    rank = rows.groupby("user_id", sort=False).cumcount().to_numpy()
    n = rows.groupby("user_id", sort=False)["item_id"].transform("size").to_numpy()
    n_hold = np.clip(np.round(n * item_fraction), 1, n - 1)
    held_index = rows.index[rank < n_hold]
    return UserHoldout(fit_part=frame.drop(index=held_index), held_out=frame.loc[np.sort(held_index)])


def holdout_examples(spec: FeatureSpec, holdout: UserHoldout,
                     events: tuple[str, ...] = ("purchase",)) -> tuple[RetrievalExamples, np.ndarray]:
    """(validation examples, items to exclude per example) as the ASOS evaluation asks them.

    One example per distinct held-out item the user did not also keep in the fit part; the query is the user's
    latest items with no session (what a request without context gets); the exclusion is all the user's
    fit-part `events` items, as the evaluation never recommends what was bought in train.
    """
    fit = sort_by_time(holdout.fit_part)
    products = fit[(fit["kind"] == PRODUCT) & fit["event_type"].isin(ITEM_EVENTS) & fit["item_id"].notna()]
    users = sorted(holdout.held_out["user_id"].astype(str).unique())
    ours = products[products["user_id"].astype(str).isin(set(users))]
    recent = {str(u): [str(i) for i in reversed(g.tolist())] for u, g in ours.groupby("user_id")["item_id"]}
    bought = ours[ours["event_type"].isin(events)].groupby("user_id")["item_id"].agg(lambda s: set(s.astype(str)))
    kept = {str(u): items for u, items in bought.items()}

    pairs = holdout.held_out[["user_id", "item_id"]].astype(str).drop_duplicates()
    new = [item not in kept.get(user, ()) for user, item in zip(pairs["user_id"], pairs["item_id"], strict=True)]
    pairs = pairs[new]
    items = spec.items.lookup(pairs["item_id"])
    pairs, items = pairs[items > 0], items[items > 0]  # an item never seen in the fit part cannot be retrieved
    user_ids = pairs["user_id"].to_numpy()
    length = spec.history_length
    contexts = [SessionContext(user_id=u, session_id="", user_recent_items=tuple(recent.get(u, [])[:length]))
                for u in user_ids]
    queries = query_inputs(spec, user_ids, contexts, np.zeros(len(user_ids), dtype=np.int64))
    width = max([len(kept.get(u, ())) for u in user_ids] + [1])
    exclude = np.zeros((len(user_ids), width), dtype=np.int64)
    for row, user in enumerate(user_ids):
        indices = spec.items.lookup(sorted(kept.get(user, ())))
        exclude[row, : len(indices)] = indices
    examples = RetrievalExamples(queries, items, np.zeros(len(items), dtype=np.int64), user_ids)
    return examples, exclude
