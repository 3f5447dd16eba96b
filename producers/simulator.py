"""Synthetic traffic from a `SyntheticWorld`: sessions of page views, carts, sparse purchases, tasks with tools.

Deterministic for a seed. Events come out in event-time order, ready to stream or to write as a file.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import BaseModel, Field

from producers.synthetic_world import SyntheticWorld, WorldConfig
from streamrec.events import AddToCart, Event, PageView, Purchase, SessionEnd, SessionStart, TaskCompleted


class TrafficConfig(BaseModel):
    sessions_per_user: float = Field(4.0, gt=0)
    views_per_session: float = Field(8.0, gt=0)
    stay_in_category: float = Field(0.65, ge=0, le=1)
    landing_page_share: float = Field(0.08, ge=0, le=1, description="Views of pages without a product")
    cart_rate: float = Field(0.045, ge=0, le=1)
    purchase_given_cart: float = Field(0.5, ge=0, le=1)
    task_session_share: float = Field(0.35, ge=0, le=1)
    follow_workflow: float = Field(0.7, ge=0, le=1, description="Next tool follows the planted workflow")
    span_days: float = Field(14.0, gt=0)
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    seed: int = 7


def _session_events(
    world: SyntheticWorld, traffic: TrafficConfig, rng: np.random.Generator, user: int, number: int, start: datetime
) -> list[Event]:
    uid = world.user_ids[user]
    sid = f"{uid}-s{number}"
    day = (start - traffic.start).total_seconds() / 86400
    affinity = world.affinity(user, day)
    on_sale = world.launched_by(day, traffic.span_days)
    z = (affinity - affinity.mean()) / (affinity.std() + 1e-9)
    taste = world.user_category_taste[user]
    by_category = _products_by_category(world)
    ts = start
    events: list[Event] = [SessionStart(event_id=f"{sid}-e0", user_id=uid, session_id=sid, ts=ts, device="web")]

    def next_id() -> str:
        return f"{sid}-e{len(events)}"

    n_views = 1 + rng.poisson(traffic.views_per_session - 1)
    category = rng.choice(len(taste), p=taste)
    for _ in range(n_views):
        ts += timedelta(seconds=float(rng.exponential(35.0)) + 2.0)
        if rng.random() < traffic.landing_page_share:
            events.append(PageView(event_id=next_id(), user_id=uid, session_id=sid, ts=ts, page="/"))
            continue
        if rng.random() > traffic.stay_in_category:
            category = rng.choice(len(taste), p=taste)
        candidates = by_category[category]
        candidates = candidates[on_sale[candidates]]
        if len(candidates) == 0:
            continue
        weights = np.exp(affinity[candidates] - affinity[candidates].max())
        product = int(candidates[rng.choice(len(candidates), p=weights / weights.sum())])
        attrs = {
            "item_id": world.product_ids[product],
            "category": world.category_names[world.product_category[product]],
            "brand": world.product_brand[product],
            "price": float(world.product_price[product]),
        }
        events.append(PageView(event_id=next_id(), user_id=uid, session_id=sid, ts=ts, page=f"/p/{product}", **attrs))
        p_cart = min(1.0, 2 * traffic.cart_rate / (1 + math.exp(-(z[product] - 1.5))))
        if rng.random() < p_cart:
            ts += timedelta(seconds=float(rng.exponential(10.0)) + 1.0)
            events.append(AddToCart(event_id=next_id(), user_id=uid, session_id=sid, ts=ts, **attrs))
            if rng.random() < traffic.purchase_given_cart:
                ts += timedelta(seconds=float(rng.exponential(60.0)) + 5.0)
                events.append(Purchase(event_id=next_id(), user_id=uid, session_id=sid, ts=ts, **attrs))

    if rng.random() < traffic.task_session_share:
        tool = int(rng.choice(len(world.tool_ids), p=world.user_tool_taste[user]))
        for _ in range(1 + rng.poisson(0.8)):
            ts += timedelta(seconds=float(rng.exponential(120.0)) + 10.0)
            events.append(
                TaskCompleted(
                    event_id=next_id(), user_id=uid, session_id=sid, ts=ts,
                    tool_id=world.tool_ids[tool], task=f"task-{rng.integers(1000)}",
                    category=world.tool_category[tool],
                )
            )
            if rng.random() < traffic.follow_workflow:
                tool = int(rng.choice(len(world.tool_ids), p=world.tool_successors[tool]))
            else:
                tool = int(rng.choice(len(world.tool_ids), p=world.user_tool_taste[user]))
    ts += timedelta(seconds=float(rng.exponential(20.0)) + 1.0)
    events.append(SessionEnd(event_id=next_id(), user_id=uid, session_id=sid, ts=ts))
    return events


_CATEGORY_CACHE: dict[int, list[np.ndarray]] = {}


def _products_by_category(world: SyntheticWorld) -> list[np.ndarray]:
    key = id(world)
    if key not in _CATEGORY_CACHE:
        _CATEGORY_CACHE.clear()
        _CATEGORY_CACHE[key] = [np.flatnonzero(world.product_category == c) for c in range(world.config.categories)]
    return _CATEGORY_CACHE[key]


def generate_events(world: SyntheticWorld, traffic: TrafficConfig) -> Iterator[Event]:
    """All sessions of all users, merged into one stream in event-time order (deterministic for the seeds)."""
    rng = np.random.default_rng(traffic.seed)
    span_s = traffic.span_days * 86400
    sessions: list[list[Event]] = []
    for user in range(world.config.users):
        n_sessions = 1 + rng.poisson(traffic.sessions_per_user - 1)
        starts = np.sort(rng.uniform(0, span_s, n_sessions))
        for number, offset in enumerate(starts):
            start = traffic.start + timedelta(seconds=float(offset))
            sessions.append(_session_events(world, traffic, rng, user, number, start))
    # Sessions are each in order; a k-way merge gives one stream in event-time order.
    yield from heapq.merge(*sessions, key=lambda e: (e.ts, e.event_id))


def world_for_events(n_events: int, seed: int = 7, **world_overrides: float) -> tuple[SyntheticWorld, TrafficConfig]:
    """A world sized so its traffic has roughly `n_events` events (about 13 events per session)."""
    traffic = TrafficConfig(seed=seed)
    per_user = traffic.sessions_per_user * (traffic.views_per_session * 1.1 + 3)
    users = max(5, math.ceil(1.5 * n_events / per_user))  # margin: session counts are random
    config = WorldConfig(users=users, seed=seed, **world_overrides)
    return SyntheticWorld.generate(config), traffic


def simulate(n_events: int, seed: int = 7, **world_overrides: float) -> tuple[SyntheticWorld, list[Event]]:
    """Exactly `n_events` events (the first ones in time order) and the world that planted them."""
    world, traffic = world_for_events(n_events, seed, **world_overrides)
    events: list[Event] = []
    for event in generate_events(world, traffic):
        events.append(event)
        if len(events) >= n_events:
            break
    return world, events
