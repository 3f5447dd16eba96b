"""The per-user holdout the two-tower chooses its epochs and popularity prior on (ASOS-style protocol)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.interactions import COLUMNS
from model.two_tower.features import build_feature_spec
from model.two_tower.holdout import holdout_examples, per_user_holdout


def purchases(n_users: int = 60, seed: int = 3) -> pd.DataFrame:
    """Users with 1..8 purchases of 40 items, in file order 1 ms apart (like the ASOS frames)."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        for item in rng.choice(40, size=int(rng.integers(1, 9)), replace=False):
            users.append(f"u{u}")
            items.append(f"i{item}")
    n = len(users)
    frame = pd.DataFrame({
        "event_id": [f"e{i}" for i in range(n)], "user_id": users, "session_id": [f"s-{u}" for u in users],
        "ts": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="ms"),
        "event_type": "purchase", "kind": "product", "item_id": items, "category": None, "brand": None,
        "price": np.nan,
    })
    return frame[COLUMNS]


def test_held_out_rows_come_from_train_only_and_never_leak_into_the_fit_part() -> None:
    train = purchases()
    holdout = per_user_holdout(train, user_fraction=0.5, item_fraction=0.3, seed=1)

    assert len(holdout.held_out) > 0
    # A partition of the training rows: nothing invented, nothing lost, nothing in both parts.
    assert set(holdout.fit_part["event_id"]) | set(holdout.held_out["event_id"]) == set(train["event_id"])
    assert not set(holdout.fit_part["event_id"]) & set(holdout.held_out["event_id"])
    counts = train.groupby("user_id").size()
    for user, held in holdout.held_out.groupby("user_id"):
        assert counts[user] >= 2  # only users with a history to query from are sampled
        kept = holdout.fit_part[holdout.fit_part["user_id"] == user]
        assert len(kept) >= 1 and len(held) < counts[user]  # the user still has a history in the fit part
    sampled = holdout.held_out["user_id"].nunique()
    assert 0.3 * (counts >= 2).sum() <= sampled <= 0.7 * (counts >= 2).sum()


def test_validation_queries_see_only_the_fit_part_and_exclude_what_the_user_kept() -> None:
    train = purchases()
    holdout = per_user_holdout(train, user_fraction=0.5, item_fraction=0.3, seed=1)
    spec = build_feature_spec(holdout.fit_part, history_length=10)
    examples, exclude = holdout_examples(spec, holdout)

    assert len(examples) > 0
    kept = holdout.fit_part.groupby("user_id")["item_id"].agg(set)
    held = holdout.held_out.groupby("user_id")["item_id"].agg(set)
    for row, user in enumerate(examples.user_ids):
        positive = spec.items.tokens[examples.items[row]]
        history = {spec.items.tokens[i] for i in examples.queries["history"][row] if i}
        excluded = {spec.items.tokens[i] for i in exclude[row] if i}
        assert positive in held[user] and positive not in kept[user]  # the protocol: new purchases only
        assert history <= kept[user]  # the query never sees a held-out purchase
        assert excluded == kept[user] & set(spec.items.tokens)


def test_same_seed_same_split() -> None:
    train = purchases()
    first = per_user_holdout(train, seed=5).held_out["event_id"].tolist()
    assert first == per_user_holdout(train, seed=5).held_out["event_id"].tolist()


def test_bundle_chooses_on_the_holdout_then_refits_on_all_train() -> None:
    from model.training import TrainingConfig, train_bundle
    from model.two_tower.towers import TwoTowerConfig

    train = purchases(n_users=120)
    tower = TwoTowerConfig(embedding_dim=8, hidden_units=8, batch_size=32, epochs=3, patience=1,
                           validation="per-user-holdout", holdout_user_fraction=0.5)
    bundle = train_bundle(train, TrainingConfig(two_tower=tower, ranker=None), progress=False)

    selection, served = bundle.metrics["two_tower_selection"], bundle.metrics["two_tower"]
    held = len(per_user_holdout(train, 0.5, tower.holdout_item_fraction, tower.seed).held_out)
    assert selection["train_examples"] == len(train) - held  # chosen without the held-out purchases
    assert selection["validation_examples"] > 0
    assert served["train_examples"] == len(train)  # the served towers saw every train purchase
    assert len(served["train_loss"]) == selection["best_epoch"]
    assert bundle.config.popularity_prior == selection["popularity_prior"]
    assert len(selection["validation_recall_by_prior"]) == 17  # 0 .. 4 x temperature in steps of 0.25
