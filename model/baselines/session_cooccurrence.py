"""Streaming baseline: item co-occurrence within sessions (tools: co-usage per user) plus popularity.

State lives in Redis under the store's prefix and is updated from the stream by `observe`, so every
worker in the group shares it and a replay in its own namespace rebuilds it from scratch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from importlib.resources import files

import redis

from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PRODUCT, TOOL, AddToCart, Event, PageView, Purchase, TaskCompleted
from streamrec.session_store import RedisKeys, SessionContext
from streamrec.settings import Settings

_LUA = files("model.baselines").joinpath("lua")
_OBSERVE_LUA = _LUA.joinpath("cooccurrence_observe.lua").read_text()
_RECOMMEND_LUA = _LUA.joinpath("cooccurrence_recommend.lua").read_text()

# How much one event says about an item: a purchase means more than a glance.
EVENT_WEIGHT = {"page_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0, "task_completed": 1.0}


class SessionCooccurrenceRecommender(Recommender):
    """Score = recency-weighted co-occurrence with the session's recent items; popularity fills the rest."""

    name = "session-cooccurrence"
    version = "1"

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str,
        window: int = 5,
        neighbours: int = 50,
        max_co_items: int = 500,
        observed_window: int = 512,
        observed_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        self.redis = client
        self.keys = RedisKeys(key_prefix)
        self.window = window  # how many previous session items an item co-occurs with
        self.neighbours = neighbours  # co-occurring items read per recent item
        self.max_co_items = max_co_items  # co-occurrence lists are trimmed to this length
        # Observation is idempotent by event id: the newest `observed_window` ids per user are remembered.
        self.observed_window = observed_window
        self.observed_ttl_s = observed_ttl_s
        # Scripts keep a batch's increments and a trigger's merge on the server: one call each,
        # instead of dozens of commands parsed in Python.
        self._observe_script = client.register_script(_OBSERVE_LUA)
        self._recommend_script = client.register_script(_RECOMMEND_LUA)

    def _pop_key(self, kind: str) -> str:
        return self.keys.global_key(f"pop:{kind}")

    def _co_key(self, kind: str, item: str) -> str:
        return self.keys.global_key(f"co:{kind}:{item}")

    # --- learning from the stream -------------------------------------------------------------
    def _observed_key(self, user_id: str) -> str:
        return self.keys.user(user_id) + f":observed:{self.name}"

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """Count each event once by event id: redeliveries are observed too (a worker may have died between
        the session write and this call) and the script drops the ones already counted."""
        keys: dict[str, int] = {}
        args: list[object] = []
        observed = 0
        for event, context in zip(events, contexts, strict=True):
            increments = self._increments(event, context)
            if not increments:
                continue
            observed += 1
            args += [keys.setdefault(self._observed_key(event.user_id), len(keys) + 1), event.event_id,
                     str(int(event.ts_ms)), len(increments)]
            for (key, member), amount in increments.items():
                args += [keys.setdefault(key, len(keys) + 1), member, repr(float(amount))]
        if observed:
            self._observe_script(
                keys=list(keys),
                args=[self.max_co_items, self.observed_window, self.observed_ttl_s, observed, *args],
            )

    def _increments(self, event: Event, context: SessionContext) -> dict[tuple[str, str], float]:
        """(zset key, member) -> amount that one event adds to popularity and co-occurrence."""
        weight = EVENT_WEIGHT.get(event.type)
        if weight is None:
            return {}
        if isinstance(event, PageView | AddToCart | Purchase) and event.item_id:
            kind, item = PRODUCT, event.item_id
            previous = [i for i in context.recent_items[1 : self.window + 1] if i != item]
        elif isinstance(event, TaskCompleted):
            kind, item = TOOL, event.tool_id
            previous = [t for t in context.consumed_ids(TOOL) if t != item][: self.window]
        else:
            return {}
        increments: dict[tuple[str, str], float] = defaultdict(float)
        increments[(self._pop_key(kind), item)] += weight
        for distance, other in enumerate(previous, start=1):
            w = weight / distance
            increments[(self._co_key(kind, item), other)] += w
            increments[(self._co_key(kind, other), item)] += w
        return increments

    def seed_catalogue(self, kind: str, item_ids: Sequence[str]) -> None:
        """Make catalogue items known before any traffic (score 0), so the first triggers have candidates."""
        if item_ids:
            self.redis.zadd(self._pop_key(kind), dict.fromkeys(item_ids, 0.0), nx=True)

    # --- serving ------------------------------------------------------------------------------
    def _seeds(self, request: RecommendationRequest) -> list[str]:
        ctx = request.context
        if request.kind == TOOL:
            seeds = [request.trigger_item] if request.trigger_item else []
            if ctx is not None:
                seeds += ctx.consumed_ids(TOOL)
        else:
            seeds = [request.trigger_item] if request.trigger_item else []
            if ctx is not None:
                seeds += list(ctx.recent_items or ctx.user_recent_items)
        unique = list(dict.fromkeys(s for s in seeds if s))
        return unique[: self.window]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        if not requests:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for request in requests:
            seeds = self._seeds(request)
            self._recommend_script(
                keys=[self._pop_key(request.kind), *(self._co_key(request.kind, s) for s in seeds)],
                args=[request.k, self.neighbours, *set(request.exclude), *seeds],
                client=pipe,
            )
        results = []
        for flat in pipe.execute():
            results.append(
                [ScoredItem(flat[i].decode(), float(flat[i + 1])) for i in range(0, len(flat), 2)]
            )
        return results

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        neighbours = self.redis.zrevrange(self._co_key(kind, item_id), 0, k - 1, withscores=True)
        return [ScoredItem(i.decode(), float(s)) for i, s in neighbours]


def seed_catalogue(settings: Settings, products: Sequence[str] = (), tools: Sequence[str] = ()) -> None:
    """Make a catalogue known to the streaming baseline under `settings.key_prefix` before any traffic.

    Score 0 and NX, as the method does: seeding never lowers what traffic taught. One definition for the
    demo, the collector's demo shop and the tests, so the first trigger already has candidates.
    """
    recommender = SessionCooccurrenceRecommender(settings.redis_client(), settings.key_prefix)
    recommender.seed_catalogue(PRODUCT, products)
    recommender.seed_catalogue(TOOL, tools)
