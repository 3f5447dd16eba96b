"""Weighted AUC per offer type: items, and offers built from item attributes (category, brand, price band)."""

from __future__ import annotations

import pandas as pd
import pytest

from measurement.evaluation.offers import price_bands, weighted_auc_by_offer

ATTRS = {
    "shoe1": {"category": "shoes", "brand": "A"},
    "shoe2": {"category": "shoes", "brand": "B"},
    "hat1": {"category": "hats", "brand": "A"},
    "bag1": {"category": "bags", "brand": "C"},
}


def test_item_offers_score_each_notification_then_weight_by_its_size():
    lists = [
        (["shoe1", "hat1", "bag1"], [0.9, 0.5, 0.1], {"shoe1"}),  # positive on top: AUC 1 (3 offers)
        (["hat1", "shoe2"], [0.8, 0.2], {"shoe2"}),  # positive at the bottom: AUC 0 (2 offers)
        (["bag1"], [0.3], set()),  # one class only: not counted
    ]
    result = weighted_auc_by_offer(lists, ATTRS)
    value, groups = result["item"]
    assert groups == 2
    assert value == pytest.approx((1.0 * 3 + 0.0 * 2) / 5)


def test_category_offers_score_the_log_sum_exp_of_their_listed_items():
    # categories offered: shoes (0.4 and 0.2: log-sum-exp 1.0), hats (0.9), bags (0.1); the user then touched a shoe
    lists = [(["hat1", "shoe1", "shoe2", "bag1"], [0.9, 0.4, 0.2, 0.1], {"shoe9"})]
    attrs = {**ATTRS, "shoe9": {"category": "shoes", "brand": "Z"}}
    value, groups = weighted_auc_by_offer(lists, attrs)["category"]
    assert groups == 1
    assert value == pytest.approx(1.0)  # two fair shoes outrank one good hat (a max would put hats first: 0.5)


def test_price_bands_are_the_feature_specs_bands():
    import numpy as np

    from model.interactions import COLUMNS
    from model.offers import item_offers
    from model.two_tower.features import build_feature_spec

    prices = [float(p) for p in range(1, 11)]
    attrs = {f"i{int(p)}": {"price": str(p)} for p in prices}
    bands = price_bands(attrs)
    assert len(set(bands.values())) == 5
    frame = pd.DataFrame({"event_id": [f"e{i}" for i in range(10)], "user_id": "u", "session_id": "s",
                          "ts": pd.Timestamp("2024-01-01", tz="UTC"), "event_type": "page_view", "kind": "product",
                          "item_id": list(attrs), "category": "c", "brand": "b", "price": prices})[COLUMNS]
    spec = build_feature_spec(frame)
    offer_of, names = item_offers(spec, "price_band")
    served = {spec.items.tokens[i]: names[offer_of[i]] for i in range(1, len(spec.items))}
    assert bands == served
    assert bands["i1"] != bands["i10"] and np.isfinite(len(names))
