"""Weighted AUC per offer type: does a model's score order the offers a user then engages with above the rest?

Offer types beyond the item itself come from the items' attributes (category, brand, price band): an
attribute offer scores the best score of the listed items carrying it, and is positive when the user
then touched any item with that attribute within the horizon. Each notification is one group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from model import metrics

ATTRIBUTE_OFFERS = ("category", "brand", "price_band")


def price_bands(attributes: Mapping[str, Mapping[str, str]], bands: int = 5) -> dict[str, str]:
    """Item -> price quintile ("q1".."q5") over the items that have a price."""
    priced = {item: float(a["price"]) for item, a in attributes.items() if "price" in a}
    if not priced:
        return {}
    edges = np.quantile(list(priced.values()), np.linspace(0, 1, bands + 1)[1:-1])
    return {item: f"q{int(np.searchsorted(edges, p, side='right')) + 1}" for item, p in priced.items()}


def offer_groups(
    lists: Sequence[tuple[Sequence[str], Sequence[float], set[str] | frozenset[str]]],
    attribute_of: Mapping[str, Mapping[str, str]],
) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """Per offer type, per notification: (labels, scores) of its offers; `lists` = (ranked, scores, engaged)."""
    groups: dict[str, dict[str, tuple[list[int], list[float]]]] = {"item": {}}
    for attr in ATTRIBUTE_OFFERS:
        groups[attr] = {}
    for n, (ranked, scores, engaged) in enumerate(lists):
        key = str(n)
        groups["item"][key] = ([int(i in engaged) for i in ranked], list(scores))
        for attr in ATTRIBUTE_OFFERS:
            best: dict[str, float] = {}
            for item, score in zip(ranked, scores, strict=True):
                value = attribute_of.get(item, {}).get(attr)
                if value is not None:
                    best[value] = max(best.get(value, -np.inf), score)
            if len(best) < 2:
                continue
            touched = {attribute_of.get(i, {}).get(attr) for i in engaged}
            offers = sorted(best)
            groups[attr][key] = ([int(o in touched) for o in offers], [best[o] for o in offers])
    return {t: g for t, g in groups.items() if g}


def weighted_auc_by_offer(
    lists: Sequence[tuple[Sequence[str], Sequence[float], set[str] | frozenset[str]]],
    attribute_of: Mapping[str, Mapping[str, str]],
) -> dict[str, tuple[float, int]]:
    """Offer type -> (weighted AUC, groups with both classes)."""
    out: dict[str, tuple[float, int]] = {}
    for offer_type, groups in offer_groups(lists, attribute_of).items():
        informative = {k: v for k, v in groups.items() if 0 < sum(v[0]) < len(v[0])}
        if informative:
            out[offer_type] = (metrics.weighted_auc(informative), len(informative))
    return out
