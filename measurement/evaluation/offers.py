"""Weighted AUC per offer type: does a model's score order the offers a user then engages with above the rest?

Offer types beyond the item itself come from the items' attributes (category, brand, price band): an
attribute offer scores the log-sum-exp of the listed items' scores that carry it and price bands are the
FeatureSpec's quantile bands, both as `model.offers` defines them; an offer is positive when the user then
touched any item with that attribute within the horizon. Each notification is one group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from model import metrics
from model.offers import log_sum_exp, price_band_edges, price_band_names, price_band_of

ATTRIBUTE_OFFERS = ("category", "brand", "price_band")


def price_bands(attributes: Mapping[str, Mapping[str, str]], bands: int = 5) -> dict[str, str]:
    """Item -> its price band's name ("12-30"), bands drawn over the items that have a price."""
    priced = {item: float(a["price"]) for item, a in attributes.items() if "price" in a}
    if not priced:
        return {}
    edges = price_band_edges(list(priced.values()), bands)
    names = price_band_names(edges)
    return {item: names[b] for item, b in zip(priced, price_band_of(list(priced.values()), edges), strict=True)}


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
            listed: dict[str, list[float]] = {}
            for item, score in zip(ranked, scores, strict=True):
                value = attribute_of.get(item, {}).get(attr)
                if value is not None:
                    listed.setdefault(value, []).append(float(score))
            if len(listed) < 2:
                continue
            touched = {attribute_of.get(i, {}).get(attr) for i in engaged}
            offers = sorted(listed)
            groups[attr][key] = ([int(o in touched) for o in offers],
                                 [float(log_sum_exp(np.asarray(listed[o]))) for o in offers])
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
