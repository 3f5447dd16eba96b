"""A synthetic shop and tool suite with planted structure, so models can be judged against an oracle.

Planted: each user has a taste over product categories (Dirichlet, a few favourites) and a latent
vector; products have a category, a brand of that category, a price and a latent vector near their
category's centre; tools form workflows (each tool has a few likely successors). Views follow taste
and affinity, purchases are sparse (about 2-3% of views) and favour high affinity.

As in a real shop, the catalogue and its hits move: a share of products (`launched_share`, 15 % by default) is
launched mid-stream, each on a day drawn uniformly over the traffic's span (no one can view it before), with
attributes drawn like the others; and each product's popularity drifts by a log-rate of its own per day
(`popularity_drift`, the standard deviation), so what sold last week is not quite what sells today.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field


class WorldConfig(BaseModel):
    users: int = Field(500, ge=1)
    products: int = Field(2000, ge=10)
    categories: int = Field(20, ge=2)
    brands_per_category: int = Field(4, ge=1)
    tools: int = Field(30, ge=3)
    latent_dim: int = Field(8, ge=2)
    taste_concentration: float = Field(0.3, gt=0, description="Dirichlet alpha: lower = more focused users")
    launched_share: float = Field(0.15, ge=0, lt=1, description="Share of products launched mid-stream")
    popularity_drift: float = Field(0.05, ge=0, description="SD of each product's log-popularity change per day")
    seed: int = 7


@dataclass
class SyntheticWorld:
    config: WorldConfig
    product_ids: list[str]
    product_category: np.ndarray  # category index per product
    product_brand: list[str]
    product_price: np.ndarray
    product_popularity: np.ndarray  # log-popularity prior per product
    product_factors: np.ndarray  # (products, dim)
    user_ids: list[str]
    user_category_taste: np.ndarray  # (users, categories), rows sum to 1
    user_factors: np.ndarray  # (users, dim)
    tool_ids: list[str]
    tool_category: list[str]
    tool_successors: np.ndarray  # (tools, tools) row-stochastic transition matrix
    user_tool_taste: np.ndarray  # (users, tools) preference over tools, rows sum to 1
    # When each product can first be seen, as a share of the traffic's span (0: from the start).
    product_launch: np.ndarray | None = None
    product_trend: np.ndarray | None = None  # log-popularity change per day
    traffic_start_ms: int | None = None  # event time of the traffic's day 0, when known (saved with the truth)
    traffic_span_days: float | None = None
    follow_workflow: float | None = None  # the traffic's chance that the next tool follows the workflow graph

    @property
    def category_names(self) -> list[str]:
        return [f"cat{c:02d}" for c in range(self.config.categories)]

    @classmethod
    def generate(cls, config: WorldConfig) -> SyntheticWorld:
        rng = np.random.default_rng(config.seed)
        n_cat, dim = config.categories, config.latent_dim
        cat_share = rng.dirichlet(np.full(n_cat, 2.0))
        product_category = rng.choice(n_cat, size=config.products, p=cat_share)
        centres = rng.normal(0, 1, (n_cat, dim))
        product_factors = centres[product_category] + rng.normal(0, 0.6, (config.products, dim))
        brand_index = rng.integers(0, config.brands_per_category, config.products)
        product_brand = [f"brand{c:02d}-{b}" for c, b in zip(product_category, brand_index, strict=True)]
        cat_price = np.exp(rng.normal(3.5, 0.8, n_cat))
        product_price = np.round(cat_price[product_category] * np.exp(rng.normal(0, 0.35, config.products)), 2)
        # Zipf-like popularity: a few hits, a long tail.
        ranks = rng.permutation(config.products) + 1
        product_popularity = -0.9 * np.log(ranks)

        user_category_taste = rng.dirichlet(np.full(n_cat, config.taste_concentration), size=config.users)
        user_factors = user_category_taste @ centres + rng.normal(0, 0.5, (config.users, dim))

        n_tools = config.tools
        tool_groups = 5
        tool_category = [f"toolcat{t % tool_groups}" for t in range(n_tools)]
        successors = np.full((n_tools, n_tools), 0.02)
        for t in range(n_tools):
            nxt = rng.choice([u for u in range(n_tools) if u != t], size=3, replace=False)
            successors[t, nxt] += np.array([3.0, 1.5, 0.8])
            successors[t, t] = 0.0
        successors /= successors.sum(axis=1, keepdims=True)
        user_tool_taste = rng.dirichlet(np.full(n_tools, 0.5), size=config.users)
        # A stream of its own for launches and drift, so the draws above (and a world without them) stay the same.
        moving = np.random.default_rng([config.seed, 1])
        launched = moving.random(config.products) < config.launched_share
        product_launch = np.where(launched, moving.uniform(0.0, 1.0, config.products), 0.0)
        product_trend = moving.normal(0.0, config.popularity_drift, config.products)
        return cls(
            config=config,
            product_ids=[f"p{i:05d}" for i in range(config.products)],
            product_category=product_category,
            product_brand=product_brand,
            product_price=product_price,
            product_popularity=product_popularity,
            product_factors=product_factors,
            user_ids=[f"u{i:05d}" for i in range(config.users)],
            user_category_taste=user_category_taste,
            user_factors=user_factors,
            tool_ids=[f"t{i:03d}" for i in range(n_tools)],
            tool_category=tool_category,
            tool_successors=successors,
            user_tool_taste=user_tool_taste,
            product_launch=product_launch,
            product_trend=product_trend,
        )

    def affinity(self, user: int, day: float = 0.0) -> np.ndarray:
        """Planted utility of every product for one user on `day` of the traffic: taste for its category, latent
        match, popularity as it has drifted by then."""
        taste = np.log(self.user_category_taste[user][self.product_category] + 1e-3)
        match = self.product_factors @ self.user_factors[user] / np.sqrt(self.config.latent_dim)
        popularity = self.product_popularity
        if self.product_trend is not None and day:
            popularity = popularity + self.product_trend * day
        return taste + match + popularity

    def launched_by(self, day: float, span_days: float) -> np.ndarray:
        """Mask of the products on sale on `day` of a traffic spanning `span_days`."""
        if self.product_launch is None:
            return np.ones(len(self.product_ids), dtype=bool)
        return self.product_launch * span_days <= day

    def launch_day(self, span_days: float) -> np.ndarray:
        """Each product's launch day (0 for the initial catalogue) in a traffic spanning `span_days`."""
        if self.product_launch is None:
            return np.zeros(len(self.product_ids))
        return self.product_launch * span_days

    def oracle_top_products(self, user: int, k: int, exclude: set[int] = frozenset()) -> list[str]:
        """What a recommender that knows the planted tastes would recommend."""
        scores = self.affinity(user).copy()
        if exclude:
            scores[list(exclude)] = -np.inf
        top = np.argsort(-scores)[:k]
        return [self.product_ids[i] for i in top]

    def catalogue_frame(self) -> pd.DataFrame:
        """Every product with its attributes, so items without training events still get (attribute) vectors."""
        return pd.DataFrame({
            "item_id": self.product_ids, "category": [self.category_names[c] for c in self.product_category],
            "brand": self.product_brand, "price": self.product_price,
        })

    def save_truth(self, path: Path, traffic_start_ms: int | None = None, span_days: float | None = None,
                   follow_workflow: float | None = None) -> None:
        """Write the planted structure as JSON, for oracle comparisons in evaluation (with the traffic's start and
        span when its event times are the simulated ones, so the oracle knows what was on sale when)."""
        truth = {
            "traffic": {"start_ms": traffic_start_ms, "span_days": span_days, "follow_workflow": follow_workflow},
            "config": self.config.model_dump(),
            "categories": self.category_names,
            "products": {
                "ids": self.product_ids,
                "category": [self.category_names[c] for c in self.product_category],
                "brand": self.product_brand,
                "price": self.product_price.tolist(),
                "popularity": self.product_popularity.tolist(),
                "factors": np.round(self.product_factors, 5).tolist(),
                "launch": None if self.product_launch is None else np.round(self.product_launch, 6).tolist(),
                "trend": None if self.product_trend is None else np.round(self.product_trend, 6).tolist(),
            },
            "users": {
                "ids": self.user_ids,
                "category_taste": np.round(self.user_category_taste, 5).tolist(),
                "factors": np.round(self.user_factors, 5).tolist(),
                "tool_taste": np.round(self.user_tool_taste, 5).tolist(),
            },
            "tools": {
                "ids": self.tool_ids,
                "category": self.tool_category,
                "successors": np.round(self.tool_successors, 5).tolist(),
            },
        }
        path.write_text(json.dumps(truth))

    @classmethod
    def load_truth(cls, path: Path) -> SyntheticWorld:
        truth = json.loads(path.read_text())
        names = truth["categories"]
        index = {name: i for i, name in enumerate(names)}
        products, traffic = truth["products"], truth.get("traffic") or {}
        launch, trend = products.get("launch"), products.get("trend")
        span = traffic.get("span_days")
        return cls(
            config=WorldConfig(**truth["config"]),
            product_ids=truth["products"]["ids"],
            product_category=np.array([index[c] for c in truth["products"]["category"]]),
            product_brand=truth["products"]["brand"],
            product_price=np.array(truth["products"]["price"]),
            product_popularity=np.array(truth["products"]["popularity"]),
            product_factors=np.array(truth["products"]["factors"]),
            user_ids=truth["users"]["ids"],
            user_category_taste=np.array(truth["users"]["category_taste"]),
            user_factors=np.array(truth["users"]["factors"]),
            tool_ids=truth["tools"]["ids"],
            tool_category=truth["tools"]["category"],
            tool_successors=np.array(truth["tools"]["successors"]),
            user_tool_taste=np.array(truth["users"]["tool_taste"]),
            # The launch as a share of the span is kept only with the span that turns it into days.
            product_launch=None if launch is None or span is None else np.array(launch),
            product_trend=None if trend is None else np.array(trend),
            traffic_start_ms=traffic.get("start_ms"),
            traffic_span_days=span,
            follow_workflow=traffic.get("follow_workflow"),
        )
