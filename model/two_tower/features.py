"""Vocabularies, the item attribute table and the query/item feature arrays both towers read.

Everything the serving side needs to rebuild the exact inputs of training lives in `FeatureSpec`
(a pydantic model saved in the bundle). Index 0 of every vocabulary means "unknown" (and "padding").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np
import pandas as pd
from pydantic import BaseModel

from model.interactions import utc_ms  # noqa: F401  (re-exported: the towers' callers import it from here)

UNKNOWN = "[UNK]"
# Dense query features, in this order: activity of the session, then time of day / week / year as sin, cos.
DENSE_FEATURES = (
    "log_page_views", "log_session_seconds", "has_session",
    "hour_sin", "hour_cos", "weekday_sin", "weekday_cos", "yearday_sin", "yearday_cos",
)


class Vocabulary(BaseModel):
    """Token <-> index; index 0 is the unknown token, so unseen values embed as "unknown"."""

    tokens: list[str]

    @classmethod
    def build(cls, values: Iterable[object], min_count: int = 1) -> Vocabulary:
        counts = pd.Series([str(v) for v in values if v is not None and pd.notna(v)], dtype=object).value_counts()
        kept = sorted(counts[counts >= min_count].index)
        return cls(tokens=[UNKNOWN, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def index(self) -> dict[str, int]:
        """Token -> index, built at first use and kept in the instance's dictionary: a pydantic private
        attribute is read through `__getattr__` (about 2 µs, once per item the serving path looks up)."""
        return {t: i for i, t in enumerate(self.tokens)}

    def lookup(self, values: Iterable[object]) -> np.ndarray:
        index = self.index
        return np.fromiter((index.get(str(v), 0) for v in values), dtype=np.int32)

    def get(self, value: object) -> int:
        return self.index.get(str(value), 0)


class FeatureSpec(BaseModel):
    """Vocabularies and the item attribute table: what both towers and the ranker index into."""

    users: Vocabulary
    items: Vocabulary
    categories: Vocabulary
    brands: Vocabulary
    price_band_edges: list[float]  # band b (1-based) holds prices in [edges[b-1], edges[b]); 0 = unknown price
    item_category: list[int]  # per item index
    item_brand: list[int]
    item_price_band: list[int]
    item_price: list[float]  # NaN-free: 0 where unknown
    item_log_q: list[float]  # log of each item's share of training positives (logQ correction)
    item_log_popularity: list[float]  # log1p(count of training interactions)
    history_length: int = 10

    @property
    def n_price_bands(self) -> int:
        return len(self.price_band_edges) + 1

    def price_band(self, prices: Sequence[float | None]) -> np.ndarray:
        values = np.array([np.nan if p is None else float(p) for p in prices], dtype=float)
        bands = np.searchsorted(np.asarray(self.price_band_edges), values, side="right").astype(np.int32) + 1
        bands[~np.isfinite(values)] = 0
        return np.minimum(bands, self.n_price_bands).astype(np.int32)

    def item_inputs(self, item_index: np.ndarray) -> dict[str, np.ndarray]:
        """Item-tower inputs for catalogue items given by vocabulary index."""
        idx = np.asarray(item_index, dtype=np.int64)
        return {
            "item": idx.astype(np.int32),
            "category": np.asarray(self.item_category, dtype=np.int32)[idx],
            "brand": np.asarray(self.item_brand, dtype=np.int32)[idx],
            "price_band": np.asarray(self.item_price_band, dtype=np.int32)[idx],
        }

    def attribute_inputs(
        self, categories: Sequence[object], brands: Sequence[object], prices: Sequence[float | None]
    ) -> dict[str, np.ndarray]:
        """Item-tower inputs for items the model never saw: unknown id, known attributes."""
        return {
            "item": np.zeros(len(categories), dtype=np.int32),
            "category": self.categories.lookup(categories),
            "brand": self.brands.lookup(brands),
            "price_band": self.price_band(prices),
        }


def time_features(ts_ms: np.ndarray) -> np.ndarray:
    """(n, 6) hour, weekday and day-of-year as sin/cos, so 23:59 sits next to 00:00 and December next to January."""
    seconds = np.asarray(ts_ms, dtype=np.float64) / 1000.0
    day = 86400.0
    hour = (seconds % day) / day
    weekday = ((seconds // day + 3) % 7) / 7.0  # 1970-01-01 was a Thursday (weekday 3)
    yearday = (seconds % (365.25 * day)) / (365.25 * day)
    angles = 2 * math.pi * np.stack([hour, weekday, yearday], axis=1)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)[:, [0, 3, 1, 4, 2, 5]].astype(np.float32)


def dense_features(page_views: np.ndarray, session_seconds: np.ndarray, has_session: np.ndarray,
                   ts_ms: np.ndarray) -> np.ndarray:
    """The `DENSE_FEATURES` matrix for a batch of queries."""
    activity = np.stack(
        [np.log1p(np.asarray(page_views, dtype=np.float64)),
         np.log1p(np.maximum(np.asarray(session_seconds, dtype=np.float64), 0.0)),
         np.asarray(has_session, dtype=np.float64)],
        axis=1,
    ).astype(np.float32)
    return np.concatenate([activity, time_features(ts_ms)], axis=1)


def category_histogram(spec: FeatureSpec, seen: Sequence[dict[str, int]]) -> np.ndarray:
    """(n, categories) share of each category among the session's views; rows of zeros for no views."""
    out = np.zeros((len(seen), len(spec.categories)), dtype=np.float32)
    for row, counts in enumerate(seen):
        total = sum(counts.values())
        for name, count in counts.items():
            out[row, spec.categories.get(name)] += count / total if total else 0.0
    return out


def pad_history(spec: FeatureSpec, histories: Sequence[Sequence[str]]) -> np.ndarray:
    """(n, history_length) item indices, newest first, 0-padded; unknown items become padding."""
    out = np.zeros((len(histories), spec.history_length), dtype=np.int32)
    index = spec.items.index
    for row, items in enumerate(histories):
        known = [i for i in (index.get(str(item), 0) for item in items) if i][: spec.history_length]
        out[row, : len(known)] = known
    return out


def build_feature_spec(frame: pd.DataFrame, history_length: int = 10, price_bands: int = 5,
                       catalogue: pd.DataFrame | None = None) -> FeatureSpec:
    """Vocabularies and item attributes from training interactions (+ an optional catalogue of unseen items)."""
    products = frame[frame["kind"] == "product"].dropna(subset=["item_id"])
    attributes = products[["item_id", "category", "brand", "price"]]
    if catalogue is not None:
        attributes = pd.concat([attributes, catalogue[["item_id", "category", "brand", "price"]]])
    # The latest known attributes of each item win (prices change).
    latest = attributes.drop_duplicates("item_id", keep="last").set_index("item_id")
    items = Vocabulary.build(latest.index)
    categories = Vocabulary.build(latest["category"])
    brands = Vocabulary.build(latest["brand"])
    prices = pd.to_numeric(latest["price"], errors="coerce")
    known_prices = prices.dropna().to_numpy()
    if len(known_prices):
        edges = np.unique(np.quantile(known_prices, np.linspace(0, 1, price_bands + 1)[1:-1])).tolist()
    else:
        edges = []
    ordered = latest.reindex(items.tokens[1:])
    counts = products["item_id"].astype(str).value_counts().reindex(items.tokens[1:]).fillna(0).to_numpy()
    share = (counts + 1.0) / (counts.sum() + len(counts))  # add-one: unseen catalogue items get a small q
    spec = FeatureSpec(
        users=Vocabulary.build(frame["user_id"]),
        items=items,
        categories=categories,
        brands=brands,
        price_band_edges=[float(e) for e in edges],
        item_category=[0, *categories.lookup(ordered["category"]).tolist()],
        item_brand=[0, *brands.lookup(ordered["brand"]).tolist()],
        item_price_band=[0],
        item_price=[0.0, *np.nan_to_num(pd.to_numeric(ordered["price"], errors="coerce").to_numpy()).tolist()],
        item_log_q=[0.0, *np.log(share).tolist()],
        item_log_popularity=[0.0, *np.log1p(counts).tolist()],
        history_length=history_length,
    )
    bands = spec.price_band(pd.to_numeric(ordered["price"], errors="coerce").tolist())
    spec.item_price_band = [0, *bands.tolist()]
    return spec


