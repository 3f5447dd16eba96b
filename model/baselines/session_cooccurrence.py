"""Streaming baseline: item co-occurrence within sessions (tools: co-usage per user) plus popularity.

State lives in Redis under the store's prefix and is updated from the stream by `observe`, so every
worker in the group shares it and a replay in its own namespace rebuilds it from scratch.

The global counts are split into `SHARDS` hash tags by a CRC32 of the item they belong to (`ShardedCounts`),
so a Redis Cluster spreads them, and their writes, over its nodes: an item's co-occurrence list and its part of the
popularity live under `{co:<shard>}`. A batch is added with one script call per shard (one round trip per node),
each deduplicating event ids in its shard's own applied set; recommending is plain reads merged in Python.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files

from model.recommender import RankedColumns, RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PRODUCT, TOOL, AddToCart, Event, PageView, Purchase, TaskCompleted
from streamrec.redis_connection import (
    SHARDS,
    LuaScript,
    RawPipeline,
    RedisClient,
    ScriptCall,
    ScriptRunner,
    shard_of,
)
from streamrec.session_store import SessionContext
from streamrec.settings import Settings

_LUA = files("model.baselines").joinpath("lua")
_OBSERVE = LuaScript(_LUA.joinpath("sharded_counts_observe.lua").read_text())
_TRIM = LuaScript(_LUA.joinpath("popularity_trim.lua").read_text())

# How much one event says about an item: a purchase means more than a glance.
EVENT_WEIGHT = {"page_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0, "task_completed": 1.0}

# (kind, list owner or None for the popularity, member) -> amount: what one event adds to a model's counts.
Increments = dict[tuple[str, str | None, str], float]




def lua_score(value: float) -> float:
    """A score as the merge scripts returned it (Lua's tostring: 14 significant digits), so lists stay as they were."""
    return float(f"{value:.14g}")


class ShardedCounts:
    """One model's global counts: per kind a popularity zset and one zset per item, split over `SHARDS` tags.

    Keys under `<prefix>g:`: `<popularity>:{<tag>:<shard>}:<kind>` (the shard's items), `<lists>:{<tag>:<shard>}:
    <kind>:<item>` (the item's shard) and `applied:{<tag>:<shard>}:<model>` (event ids the shard has counted, the
    newest `applied_window`). Lists are trimmed to `cap` past 1.2 x `cap` as before; so is the popularity, with the
    cut drawn over every shard (two more round trips, only when a batch takes it past 1.2 x `cap`).
    """

    def __init__(self, client: RedisClient, key_prefix: str, tag: str, model: str, popularity: str, lists: str,
                 kinds: Sequence[str], cap: int, applied_window: int, applied_ttl_s: int) -> None:
        self.redis, self.runner = client, ScriptRunner(client)
        self.prefix, self.tag, self.model = key_prefix, tag, model
        self.popularity, self.lists, self.kinds = popularity, lists, tuple(kinds)
        self.cap, self.applied_window, self.applied_ttl_s = cap, applied_window, applied_ttl_s
        self._sizes: dict[str, list[int | None]] = {}  # per kind, each shard's popularity size as last read

    def _key(self, name: str, shard: int, rest: str) -> str:
        return f"{self.prefix}g:{name}:{{{self.tag}:{shard}}}:{rest}"

    def pop_key(self, kind: str, shard: int) -> str:
        return self._key(self.popularity, shard, kind)

    def list_key(self, kind: str, item: str) -> str:
        return self._key(self.lists, shard_of(item), f"{kind}:{item}")

    def applied_key(self, shard: int) -> str:
        return self._key("applied", shard, self.model)

    # --- writing ------------------------------------------------------------------------------------------------
    def add(self, events: Sequence[tuple[str, int, Increments]]) -> None:
        """Add (event id, ts ms, increments) in order, each event once per shard: one script call per shard the
        batch touches (each reports its popularity sizes), then the popularity trim where a kind grew past its
        bound. The other shards' sizes are this instance's last reading of them: a batch of one event used to call
        all 16 shards, 0.8 ms of the worker's 100 events/s loop. A reading can be stale (other workers write
        too), so the trim decision is made on fresh sizes, read from every shard when the sum looks past it."""
        per_shard: dict[int, _ShardCall] = {}
        for event_id, ts_ms, increments in events:
            by_shard: dict[int, list[tuple[str, str, float]]] = defaultdict(list)
            for (kind, owner, member), amount in increments.items():
                if owner is None:
                    by_shard[shard_of(member)].append((self.pop_key(kind, shard_of(member)), member, amount))
                else:
                    by_shard[shard_of(owner)].append((self.list_key(kind, owner), member, amount))
            for shard, adds in by_shard.items():
                if shard not in per_shard:
                    per_shard[shard] = _ShardCall(self, shard)
                per_shard[shard].event(event_id, ts_ms, adds)
        touched = sorted(per_shard)
        replies = self.runner.run([per_shard[shard].script_call() for shard in touched])
        for index, kind in enumerate(self.kinds):
            sizes = self._sizes.setdefault(kind, [None] * SHARDS)
            grown = False
            for shard, reply in zip(touched, replies, strict=True):
                sizes[shard] = reply[1 + 2 * index]
                grown = grown or bool(reply[2 + 2 * index])
            if grown and (None in sizes or sum(sizes) > self.cap * 1.2):
                self._sizes[kind] = sizes = self._read_sizes(kind)
                if sum(sizes) > self.cap * 1.2:
                    self._trim_popularity(kind, sum(sizes) - self.cap)
                    self._sizes[kind] = [None] * SHARDS  # read again at the next growth

    def _read_sizes(self, kind: str) -> list[int]:
        """Every shard's popularity size for `kind`, now (one pipelined read)."""
        read = self.redis.pipeline(transaction=False)
        for shard in range(SHARDS):
            read.zcard(self.pop_key(kind, shard))
        return [int(size) for size in read.execute()]

    def _trim_popularity(self, kind: str, excess: int) -> None:
        """Drop the `excess` lowest (by score, then member) of the kind's popularity over every shard."""
        read = self.redis.pipeline(transaction=False)
        for shard in range(SHARDS):
            read.zrange(self.pop_key(kind, shard), 0, excess - 1, withscores=True)
        lowest = sorted((score, member, shard) for shard, rows in enumerate(read.execute()) for member, score in rows)
        doomed: dict[int, list[object]] = defaultdict(list)
        for score, member, shard in lowest[:excess]:
            doomed[shard] += [member, repr(float(score))]
        self.runner.run([ScriptCall(_TRIM, [self.pop_key(kind, shard)], args) for shard, args in doomed.items()])

    def seed(self, kind: str, items: Sequence[str]) -> None:
        """Items known at count 0 (NX: never lowers a count)."""
        by_shard: dict[int, dict[str, float]] = defaultdict(dict)
        for item in items:
            by_shard[shard_of(item)][item] = 0.0
        write = self.redis.pipeline(transaction=False)
        for shard, members in by_shard.items():
            write.zadd(self.pop_key(kind, shard), members, nx=True)
        write.execute()

    # --- reading ------------------------------------------------------------------------------------------------
    def queue_popular(self, pipe, kind: str, n: int) -> None:
        """Queue the reads of each shard's first `n` by popularity (`merge_popular` takes their replies)."""
        for shard in range(SHARDS):
            queue_top(pipe, self.pop_key(kind, shard), n)

    @staticmethod
    def merge_popular(tops: Sequence[list]) -> list[tuple[str, float]]:
        """The shards' firsts as one list in ZREVRANGE's order (score, then member bytes, descending): each shard's
        first n holds its part of the overall first n, so the overall first n are exact."""
        return ShardedCounts.merge_popular_prefix(tops, None)[0]

    @staticmethod
    def merge_popular_prefix(tops: Sequence[list], per_shard: int | None) -> tuple[list[tuple[str, float]], bool]:
        """The shards' first `per_shard` merged, cut to the part that is exact, and whether a cut was made: a shard
        that returned all `per_shard` may hold more items below its last one, so only rows at or above the highest
        such last row (in ZREVRANGE's order) are certain to be the overall first ones (an item lives in one
        shard). `per_shard` None: no cut (the caller keeps only as many rows as each shard was asked for)."""
        shards = [score_pairs(top) for top in tops]
        rows = sorted(((score, member) for pairs in shards for member, score in pairs), reverse=True)
        cuts = [] if per_shard is None else [(pairs[-1][1], pairs[-1][0]) for pairs in shards
                                             if len(pairs) >= per_shard]
        if cuts:
            cut = max(cuts)
            rows = [row for row in rows if row >= cut]
        return [(member.decode(), score) for score, member in rows], bool(cuts)


def queue_top(pipe, key: str, n: int) -> None:
    """Queue `ZREVRANGE key 0 n-1 WITHSCORES` raw (`score_pairs` reads it): redis-py's conversion of every score to
    its legacy shape cost more than the merge."""
    pipe.execute_command("ZREVRANGE", key, 0, max(n, 1) - 1, "WITHSCORES")


def score_pairs(reply: list) -> list[tuple[bytes, float]]:
    """`(member, score)` pairs of a raw `ZREVRANGE ... WITHSCORES` reply: nested pairs (RESP3) or flat (RESP2)."""
    if not reply:
        return []
    if isinstance(reply[0], list | tuple):
        return [(member, float(score)) for member, score in reply]
    return [(reply[j], float(reply[j + 1])) for j in range(0, len(reply), 2)]


@dataclass(frozen=True)
class _PopularFill:
    """A kind's popularity firsts as read at `read_at_ms` of event time: exact, and the whole of it if `complete`."""

    rows: list[tuple[str, float]]
    complete: bool
    read_at_ms: int

    def covers(self, n: int) -> bool:
        return self.complete or len(self.rows) >= n


_NO_FILL = _PopularFill([], False, 0)


class _ShardCall:
    """The arguments of one shard's observe call, built event by event."""

    def __init__(self, counts: ShardedCounts, shard: int) -> None:
        self.counts = counts
        self.keys: dict[str, int] = {counts.applied_key(shard): 1}
        for kind in counts.kinds:
            self.keys[counts.pop_key(kind, shard)] = len(self.keys) + 1
        self.args: list[object] = []
        self.events = 0

    def event(self, event_id: str, ts_ms: int, adds: list[tuple[str, str, float]]) -> None:
        self.events += 1
        self.args += [event_id, str(int(ts_ms)), len(adds)]
        for key, member, amount in adds:
            self.args += [self.keys.setdefault(key, len(self.keys) + 1), member, repr(float(amount))]

    def script_call(self) -> ScriptCall:
        counts = self.counts
        return ScriptCall(_OBSERVE, list(self.keys), [counts.cap, counts.applied_window, counts.applied_ttl_s,
                                                      len(counts.kinds), self.events, *self.args])


class SessionCooccurrenceRecommender(Recommender):
    """Score = recency-weighted co-occurrence with the session's recent items; popularity fills the rest."""

    name = "session-cooccurrence"
    version = "1"
    # Where the counts live: `g:pop:{co:<shard>}:<kind>`, `g:co:{co:<shard>}:<kind>:<item>`.
    shard_tag, popularity_name, list_name, kinds = "co", "pop", "co", (PRODUCT, TOOL)

    def __init__(
        self,
        client: RedisClient,
        key_prefix: str,
        window: int = 5,
        neighbours: int = 50,
        max_co_items: int = 500,
        applied_window: int = 100_000,
        applied_ttl_s: int = 7 * 24 * 3600,
        popular_refresh_ms: int = 60_000,
    ) -> None:
        self.redis = client
        self.window = window  # how many previous session items an item co-occurs with
        self.neighbours = neighbours  # co-occurring items read per recent item
        self.max_co_items = max_co_items  # co-occurrence lists are trimmed to this length
        # Observation is idempotent by event id: each shard remembers the newest `applied_window` ids it counted
        # (a shard sees about half the events: some 200,000 events back by default).
        self.counts = ShardedCounts(client, key_prefix, self.shard_tag, self.name, self.popularity_name,
                                    self.list_name, self.kinds, max_co_items, applied_window, applied_ttl_s)
        # The popularity fill is kept per kind and read again once the stream's event time has moved on by
        # `popular_refresh_ms` (0: after every observe), as session-knn-stream keeps its own: reading the 16
        # shards' firsts was 16 of a trigger's 19 Redis commands here.
        self.popular_refresh_ms = popular_refresh_ms
        self._popular: dict[str, _PopularFill] = {}
        self._observed_ms = 0  # the latest event time observed

    def _co_key(self, kind: str, item: str) -> str:
        return self.counts.list_key(kind, item)

    # --- learning from the stream -------------------------------------------------------------
    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """Count each event once by event id: redeliveries are observed too (a worker may have died between
        the session write and this call) and each shard drops the ones it counted already."""
        counted = []
        for event, context in zip(events, contexts, strict=True):
            increments = self._increments(event, context)
            if increments:
                counted.append((event.event_id, int(event.ts_ms), increments))
        if counted:
            self.counts.add(counted)
        if events:
            self._observed_ms = max(self._observed_ms, *(int(event.ts_ms) for event in events))
        self._popular = {kind: fill for kind, fill in self._popular.items()
                         if self._observed_ms - fill.read_at_ms < self.popular_refresh_ms}

    def _increments(self, event: Event, context: SessionContext) -> Increments:
        """What one event adds to popularity and co-occurrence (amounts summed per list and member)."""
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
        increments: Increments = defaultdict(float)
        increments[(kind, None, item)] += weight
        for distance, other in enumerate(previous, start=1):
            w = weight / distance
            increments[(kind, item, other)] += w
            increments[(kind, other, item)] += w
        return increments

    def seed_catalogue(self, kind: str, item_ids: Sequence[str]) -> None:
        """Make catalogue items known before any traffic (score 0), so the first triggers have candidates."""
        if item_ids:
            self.counts.seed(kind, item_ids)

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
        return [answer.scored() for answer in self.recommend_columns(requests)]

    def recommend_columns(self, requests: Sequence[RecommendationRequest]) -> list[RankedColumns]:
        """One pipelined read per batch: the seeds' lists and each popularity shard's first entries."""
        if not requests:
            return []
        seeds = [self._seeds(request) for request in requests]
        lists = list(dict.fromkeys((r.kind, s) for r, own in zip(requests, seeds, strict=True) for s in own))
        depth: dict[str, int] = {}  # per kind: popularity entries the fill may pass over (blocked, chosen) and take
        for request, own in zip(requests, seeds, strict=True):
            if request.k > 0:
                need = 2 * request.k + len(request.exclude | set(own))
                depth[request.kind] = max(depth.get(request.kind, 0), need)
        stale = [kind for kind, n in depth.items() if not self._popular.get(kind, _NO_FILL).covers(n)]
        # Each shard's share of the first `n`, with room: an item lives in one of 16 shards by hash, so a shard
        # rarely holds more than twice its share; one that does is read again in full below. Every shard's first
        # n is 3,300 rows for a 100-item fill on a large catalogue.
        shares = {kind: 2 * -(-depth[kind] // SHARDS) + 8 for kind in stale}
        read = RawPipeline(self.redis)
        for kind, seed in lists:
            queue_top(read, self._co_key(kind, seed), self.neighbours)
        for kind in stale:
            self.counts.queue_popular(read, kind, shares[kind])
        replies = read.execute()
        found = {pair: _normalised(score_pairs(reply)) for pair, reply in zip(lists, replies, strict=False)}
        tops = {kind: replies[len(lists) + SHARDS * n:][:SHARDS] for n, kind in enumerate(stale)}

        def popular(kind: str) -> list[tuple[str, float]]:  # merged only for a list the seeds leave short
            if kind in tops:
                rows, cut = ShardedCounts.merge_popular_prefix(tops.pop(kind), shares[kind])
                if cut and len(rows) < depth[kind]:
                    full = RawPipeline(self.redis)  # a shard held more than the read took
                    self.counts.queue_popular(full, kind, depth[kind])
                    rows = ShardedCounts.merge_popular(full.execute())[: depth[kind]]
                self._popular[kind] = _PopularFill(rows, not cut, self._observed_ms)
            return self._popular[kind].rows

        return [_merged(request, own, [found[(request.kind, s)] for s in own], popular)
                for request, own in zip(requests, seeds, strict=True)]

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        neighbours = self.redis.zrevrange(self._co_key(kind, item_id), 0, k - 1, withscores=True)
        return [ScoredItem(i.decode(), float(s)) for i, s in neighbours]


def _normalised(pairs: list[tuple[bytes, float]]) -> tuple[list[str], list[float]]:
    """A seed's list as text and each score over the list's top score: once per batch, however many requests
    share the seed."""
    if not pairs:
        return [], []
    top = pairs[0][1] if pairs[0][1] > 0 else 1.0
    return [member.decode() for member, _ in pairs], [score / top for _, score in pairs]


def _merged(request: RecommendationRequest, seeds: list[str], lists: list[tuple[list[str], list[float]]],
            popular: Callable[[str], list[tuple[str, float]]]) -> RankedColumns:
    """Seed s (1-based, most recent first) adds score / (its list's top score) / s to each of its list's items; the
    best k by score then id; popularity fills the rest below every co-occurrence score (in [0, 0.01]). Neither the
    seeds nor the request's exclude are returned. (What cooccurrence_recommend.lua did, step for step; the sums are
    returned as summed, not rounded to the 14 digits Lua printed.)"""
    if request.k <= 0:
        return RankedColumns([], [])
    blocked = set(request.exclude) | set(seeds)
    scores: dict[str, float] = {}
    for position, (members, normed) in enumerate(lists, start=1):
        for item, value in zip(members, normed, strict=True):
            if item not in blocked:
                scores[item] = scores.get(item, 0.0) + value / position
    items = sorted(scores, key=lambda i: (-scores[i], i))[: request.k]
    values = [scores[i] for i in items]  # as summed: rounding to Lua's 14 digits cost 14 µs per event
    if len(items) >= request.k:
        return RankedColumns(items, values)
    chosen, fill = set(items), popular(request.kind)
    top_pop = fill[0][1] if fill and fill[0][1] > 0 else 1.0
    for item, score in fill:
        if len(items) >= request.k:
            break
        if item not in blocked and item not in chosen:
            items.append(item)
            values.append(0.01 * score / top_pop)
            chosen.add(item)
    return RankedColumns(items, values)


def seed_catalogue(settings: Settings, products: Sequence[str] = (), tools: Sequence[str] = ()) -> None:
    """Make a catalogue known to the streaming baseline under `settings.key_prefix` before any traffic.

    Score 0 and NX, as the method does: seeding never lowers what traffic taught. One definition for the
    demo, the collector's demo shop and the tests, so the first trigger already has candidates.
    """
    recommender = SessionCooccurrenceRecommender(settings.redis_client(), settings.key_prefix)
    recommender.seed_catalogue(PRODUCT, products)
    recommender.seed_catalogue(TOOL, tools)
