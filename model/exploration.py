"""An exploration budget for young items: a few fixed slots of each product list go to items first seen lately.

A model learns an item from its events, so an item launched minutes ago has too few of them to be ranked: it is
shown rarely, so it gets few events, so it stays unknown. `YoungItemExploration` wraps the served model and, for
product requests, puts young items (first event at most `young_hours` ago) of the trigger's category (else the
session's categories) in the slots at positions 1/share, 2/share, ... of the list (share 0.2: the 5th, 10th, 15th
and 20th; so the 5th of a 5-item notification), pushing the model's items down. Which young items: Thompson
sampling on their clicks, a Beta(1 + clicks, 1 + shown - clicks) draw per candidate, where a click is the user's
own event on the item within `click_window_s` of being shown it (in the first `shown_positions` of a list).

An item is young only once the stream has been watched for `young_hours` before its first event: the first day of
a deployment (or of a namespace) sees the whole existing catalogue for the first time, and none of it is new.

Where the state lives: each item's first-seen time in Redis (`HSETNX`, so every worker and a restarted one agree
on what is young: in memory a restart would take the whole catalogue for new); what was shown and clicked in Redis
(hashes sharded by item, shared by the workers: one pipelined round trip per batch to read, one to write); the
impressions still waiting for a click in memory, per user: the events topic is keyed by user, so the worker that
showed an item to a user is the one that sees the user's next events (a rebalance loses a few pending clicks).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import redis

from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PRODUCT, Event
from streamrec.redis_connection import shard_of
from streamrec.session_store import RedisKeys, SessionContext
from streamrec.settings import Settings

PRODUCT_EVENTS = ("page_view", "add_to_cart", "purchase")


def exploration_positions(share: float, k: int) -> list[int]:
    """The 0-based list positions given to exploration in a list of `k`: every (1/share)-th, none at share 0."""
    if share <= 0 or k < 2:
        return []
    step = 1.0 / share
    return [p - 1 for p in (round(step * j) for j in range(1, k + 1)) if 2 <= p <= k]


class YoungItemExploration(Recommender):
    """`model`'s lists with a share of slots for young items chosen by Thompson sampling on their clicks."""

    def __init__(self, model: Recommender, client: redis.Redis, key_prefix: str, share: float = 0.2,
                 young_hours: float = 24.0, click_window_s: int = 3600, shown_positions: int = 5,
                 seed: int = 7) -> None:
        if not 0 <= share <= 0.5:
            raise ValueError(f"exploration share must be within [0, 0.5], got {share}")
        self.model = model
        self.redis = client
        self.keys = RedisKeys(key_prefix)
        self.share = share
        self.young_ms = int(young_hours * 3600_000)
        self.click_window_ms = click_window_s * 1000
        self.shown_positions = shown_positions
        self.name, self.version = model.name, model.version
        self._rng = np.random.default_rng(seed)
        self._first_seen: dict[str, int] = {}  # what Redis said, cached: an item's first event never changes
        self._young: dict[str, dict[str, int]] = defaultdict(dict)  # category -> young item -> first seen ms
        self._category: dict[str, str] = {}
        self._pending: dict[str, dict[str, int]] = defaultdict(dict)  # user -> item shown -> when (ms)
        self._now_ms = 0
        self._watching_since: int | None = None  # the first event time this namespace ever observed (Redis)
        self._next_prune_ms = 0  # stale impressions are dropped once per click window of event time

    # Per-item state in `SHARDS` hashes, an item's by a CRC32 of its id (`{explore:<shard>}`): a Redis Cluster spreads
    # them over its nodes, and a batch's reads and writes are plain commands its pipeline splits by node.
    def _first_key(self, item: str) -> str:
        return f"{self.keys.prefix}{{explore:{shard_of(item)}}}:first-seen"

    def _shown_key(self, item: str) -> str:
        return f"{self.keys.prefix}{{explore:{shard_of(item)}}}:shown"

    def _clicked_key(self, item: str) -> str:
        return f"{self.keys.prefix}{{explore:{shard_of(item)}}}:clicked"

    @property
    def _since_key(self) -> str:  # read once per worker
        return self.keys.global_key("explore:watching-since")

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """The model learns; first-seen times are recorded; a user's event on an item shown to them is a click."""
        self.model.observe(events, contexts)
        products = [e for e in events if e.type in PRODUCT_EVENTS and getattr(e, "item_id", None)]
        if not products:
            return
        unknown: dict[str, int] = {}
        for event in products:
            item = event.item_id
            self._now_ms = max(self._now_ms, event.ts_ms)
            category = getattr(event, "category", None)
            if category:
                self._category.setdefault(item, category)
            if item not in self._first_seen:
                unknown[item] = min(unknown.get(item, event.ts_ms), event.ts_ms)
        clicks: dict[str, int] = defaultdict(int)
        for event in products:
            shown = self._pending.get(event.user_id)
            when = shown.pop(event.item_id, None) if shown else None
            if when is not None and 0 <= event.ts_ms - when <= self.click_window_ms:
                clicks[event.item_id] += 1
        pipe = self.redis.pipeline(transaction=False)
        if self._watching_since is None:
            pipe.set(self._since_key, min(e.ts_ms for e in products), nx=True)
            pipe.get(self._since_key)
        for item, ts_ms in unknown.items():
            pipe.hsetnx(self._first_key(item), item, ts_ms)
            pipe.hget(self._first_key(item), item)
        for item, count in clicks.items():
            pipe.hincrby(self._clicked_key(item), item, count)
        replies = pipe.execute() if len(pipe) else []
        if self._watching_since is None:
            self._watching_since = int(replies[1])
            replies = replies[2:]
        for j, item in enumerate(unknown):
            first = int(replies[2 * j + 1])
            self._first_seen[item] = first
            category = self._category.get(item)
            watched_before = first - self._watching_since >= self.young_ms
            if category and watched_before and self._now_ms - first <= self.young_ms:
                self._young[category][item] = first

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        answers = self.model.recommend_batch(requests)
        pools: dict[int, tuple[list[str], list[int]]] = {}  # request -> (young candidates, slots)
        for j, (request, answer) in enumerate(zip(requests, answers, strict=True)):
            slots = exploration_positions(self.share, request.k) if request.kind == PRODUCT else []
            pool = self._pool(request, {s.item_id for s in answer}) if slots else []
            if pool:
                pools[j] = (pool, slots)
        if not pools:
            return answers
        by_shard: dict[int, list[str]] = defaultdict(list)
        for item in sorted({item for pool, _ in pools.values() for item in pool}):
            by_shard[shard_of(item)].append(item)
        pipe = self.redis.pipeline(transaction=False)
        for items in by_shard.values():
            pipe.hmget(self._shown_key(items[0]), items)
            pipe.hmget(self._clicked_key(items[0]), items)
        replies = pipe.execute()
        posterior: dict[str, tuple[float, float]] = {}
        for j, items in enumerate(by_shard.values()):
            for item, s, c in zip(items, replies[2 * j], replies[2 * j + 1], strict=True):
                posterior[item] = (1.0 + float(c or 0), 1.0 + max(0.0, float(s or 0) - float(c or 0)))
        shown_now: dict[str, int] = defaultdict(int)
        out = list(answers)
        for j, (pool, slots) in pools.items():
            request = requests[j]
            draws = self._rng.beta([posterior[i][0] for i in pool], [posterior[i][1] for i in pool])
            chosen = [pool[i] for i in np.argsort(-draws, kind="stable")[: len(slots)]]
            out[j] = _with_slots(answers[j], chosen, slots, request.k)
            for scored in out[j][: self.shown_positions]:
                if scored.item_id in chosen:
                    shown_now[scored.item_id] += 1
                    self._pending[request.user_id][scored.item_id] = request.now_ms
        if shown_now:
            pipe = self.redis.pipeline(transaction=False)
            for item, count in shown_now.items():
                pipe.hincrby(self._shown_key(item), item, count)
            pipe.execute()
        self._forget_stale_impressions()
        return out

    def with_model(self, model: Recommender) -> YoungItemExploration:
        """Explore around `model` from now on (a reloaded or retrained model), keeping what was learned of clicks."""
        self.model = model
        self.name, self.version = model.name, model.version
        return self

    def _pool(self, request: RecommendationRequest, listed: set[str]) -> list[str]:
        """Young items of the trigger item's category (else the session's categories) not listed, excluded or in
        the session already."""
        context = request.context
        in_session = set(context.recent_items) if context else set()
        category = self._category.get(request.trigger_item or "")
        categories = [category] if category else list(context.categories) if context else []
        now = request.now_ms or self._now_ms
        pool: list[str] = []
        for name in categories:
            young = self._young.get(name)
            if not young:
                continue
            for item, first in list(young.items()):
                if now - first > self.young_ms:
                    del young[item]  # grown up
                elif (first <= now and item not in listed and item not in request.exclude
                      and item not in in_session and item != request.trigger_item):
                    pool.append(item)
            if pool:
                break
        return pool

    def _forget_stale_impressions(self) -> None:
        """Drop impressions past the click window (they can no longer be clicked), once per window of event time:
        not a scan of every pending user on every batch."""
        if self._now_ms < self._next_prune_ms or len(self._pending) < 10_000:
            return
        self._next_prune_ms = self._now_ms + self.click_window_ms
        horizon = self._now_ms - self.click_window_ms
        for user in [u for u, shown in self._pending.items() if max(shown.values(), default=0) < horizon]:
            del self._pending[user]

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        return self.model.similar_items(item_id, k, kind)


def _with_slots(answer: list[ScoredItem], chosen: list[str], slots: list[int], k: int) -> list[ScoredItem]:
    """`answer` with `chosen` put at `slots` (in order) and the model's items moved down, cut to `k`."""
    out = list(answer)
    for position, item in zip(slots, chosen, strict=False):
        if position > len(out):
            position = len(out)
        score = out[position - 1].score if position and out else 0.0
        out.insert(position, ScoredItem(item, score if math.isfinite(score) else 0.0))
    return out[:k]


def exploring(model: Recommender, client: redis.Redis, settings: Settings) -> Recommender:
    """`model` with the exploration budget of `settings` (itself when the share is 0)."""
    if settings.exploration_share <= 0:
        return model
    return YoungItemExploration(model, client, settings.key_prefix, settings.exploration_share,
                                settings.exploration_young_hours,
                                shown_positions=settings.recommendations_per_notification)


def explored(model: Recommender) -> Recommender:
    """The model inside an exploration wrapper (or `model` itself)."""
    return model.model if isinstance(model, YoungItemExploration) else model
