"""Weighted AUC per offer type: items, and offers built from item attributes (category, brand, price band)."""

from __future__ import annotations

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


def test_category_offers_take_the_best_listed_score_and_match_engaged_categories():
    # categories offered: shoes (best 0.4), hats (0.9), bags (0.1); the user then touched another shoe
    lists = [(["hat1", "shoe1", "shoe2", "bag1"], [0.9, 0.4, 0.2, 0.1], {"shoe9"})]
    attrs = {**ATTRS, "shoe9": {"category": "shoes", "brand": "Z"}}
    value, groups = weighted_auc_by_offer(lists, attrs)["category"]
    assert groups == 1
    assert value == pytest.approx(0.5)  # shoes beats bags, loses to hats


def test_price_bands_split_prices_into_quintiles():
    attrs = {f"i{p}": {"price": str(float(p))} for p in range(1, 11)}
    bands = price_bands(attrs)
    assert bands["i1"] == "q1" and bands["i10"] == "q5"
    assert len(set(bands.values())) == 5
