"""Per-user temporal holdout: the newest share of each user's events is held out; lists exclude train items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from measurement.evaluation.holdout import temporal_holdout
from model.holdout_scoring import held_out_history, held_out_purchases, score_users
from model.recommender import RecommendationRequest, Recommender, ScoredItem

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def interactions(per_user: dict[str, list[str]]) -> pd.DataFrame:
    rows = []
    for user, items in per_user.items():
        for i, item in enumerate(items):
            rows.append({"user_id": user, "item_id": item, "ts": T0 + timedelta(hours=i), "event_type": "purchase",
                         "kind": "product", "session_id": user, "event_id": f"{user}-{i}"})
    return pd.DataFrame(rows)


def test_newest_tenth_of_each_user_is_held_out_at_least_one():
    frame = interactions({"many": [f"i{n}" for n in range(20)], "few": ["a", "b", "c"], "single": ["z"]})
    train, test = temporal_holdout(frame, 0.1)
    assert sorted(test[test.user_id == "many"]["item_id"]) == ["i18", "i19"]  # the two newest of 20
    assert list(test[test.user_id == "few"]["item_id"]) == ["c"]
    assert "single" not in set(test["user_id"])  # nothing left to train on otherwise
    last_train = train.groupby("user_id")["ts"].max()
    first_test = test.groupby("user_id")["ts"].min()
    assert all(last_train[u] < first_test[u] for u in first_test.index)  # held out = strictly newer


class Fixed(Recommender):
    """Always the same list, honouring `exclude` (so train items never come back)."""

    name = "fixed"

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        items = [i for i in ["a", "b", "c", "d"] if i not in request.exclude]
        return [ScoredItem(i, 1.0) for i in items[: request.k]]


def test_users_are_scored_on_their_held_out_items_with_train_items_excluded():
    train = interactions({"u": ["a"], "v": ["c"]})
    test = interactions({"u": ["b"], "v": ["x"]})
    rows = score_users("fixed", Fixed(), held_out_history(train, test), ks=(1, 2), with_context=True, progress=False)
    value = {(r.metric, r.k): r.value for r in rows}
    assert value[("HR", 1)] == pytest.approx(0.5)  # u gets b first (a excluded); v never gets x
    assert value[("MRR", 2)] == pytest.approx(0.5)
    assert value[("coverage", 1)] == pytest.approx(2 / 4)  # b for u, a for v, over a b c x


def test_held_out_purchases_drop_what_was_bought_before_and_users_with_nothing_left():
    train = interactions({"u": ["a", "b"], "v": ["c"]})
    test = interactions({"u": ["b", "d"], "v": ["c"]})
    held = held_out_purchases(train, test)
    assert held.relevant == {"u": {"d"}}  # b was bought in train; v has nothing new
    assert held.exclude["u"] == {"a", "b"}
    rows = score_users("fixed", Fixed(), held, ks=(1, 2), progress=False)
    value = {(r.metric, r.k): r.value for r in rows}
    assert (value[("HR", 1)], value[("HR", 2)]) == (0.0, 1.0)  # with a, b excluded u is offered c, then d
