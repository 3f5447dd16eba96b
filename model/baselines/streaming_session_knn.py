"""Streaming V-SKNN: the session-kNN of `session_knn.py` over posting lists in Redis, fresh to the event and shared
by every worker of the group.

Why Redis and not an index in each worker: sessions are partitioned by user across workers, so a worker-local
index would see 1/N of the sessions; a full copy per worker (a global table fed from the whole topic) costs N
copies, N reads of the topic and a start-up bootstrap. In Redis, each worker writes its own partitions' sessions
and reads everyone's, and the index survives a worker restart (and is rebuilt by `restore-state` like the rest).

Layout under the store's prefix (every command is idempotent and order-free, so a redelivered batch or two workers
during a rebalance cannot corrupt it; no script and no multi-key command, so on a Redis Cluster every key may lie in
its own slot, and the global counts are split into `SHARDS` keys so that no one node takes every write):
- `{s:<session>}:knn-items`: the session's items (set, TTL'd);
- `{i:<item>}:knn-sessions`: the sessions with the item, scored by each session's last event time (zset, `ZADD GT`
  so a late event never moves a session back; trimmed to the `posting_cap` most recent when a session joins it,
  TTL'd). V-SKNN reads at most `sample_size` sessions per item, so a cap of `sample_size` loses nothing; a session
  that comes back to a list it was cut from is added without a trim (the next joining session trims), as the reads
  take only the `posting_cap` most recent;
- `{knn:<shard>}:item-sessions`: sessions per item (idf and the popularity fill), the item's shard by a CRC32 of its
  id; `{knn:<shard>}:sessions`: the number of sessions, the session's shard by its id (the total is their sum).

Scoring is the offline model's, step for step and in the same order (the same sums, the same tie rules: sessions by
last event time then id, items by score then id), so on the same events both give the same lists (a test checks).
The current session is in the index (it was observed before the recommendation): it is left out of its own
neighbours. A batch of requests costs two pipelined reads: the postings of every query item, then the items of
every chosen neighbour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis

from model.baselines.session_knn import query_weights
from model.recommender import RankedColumns, RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PRODUCT, Event
from streamrec.redis_connection import SHARDS, RawPipeline, shard_of
from streamrec.session_store import SessionContext

_ITEM_EVENTS = ("page_view", "add_to_cart", "purchase")




@dataclass
class _Plan:
    """One request between the two reads: its query weights and chosen neighbours."""

    request: RecommendationRequest
    weights: dict[str, float]
    neighbours: list[tuple[str, float]]  # (session, similarity), oldest first


class StreamingSessionKNNRecommender(Recommender):
    """V-SKNN whose index is the stream so far: every observed session is a neighbour at once."""

    name = "session-knn-stream"
    version = "1"

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str,
        k: int = 100,
        sample_size: int = 500,
        weighting: str = "linear",
        idf: bool = False,
        max_len: int = 20,
        posting_cap: int | None = None,
        ttl_s: int = 30 * 24 * 3600,
        popular_size: int = 1000,
        popular_refresh_ms: int = 60_000,
    ) -> None:
        if weighting not in ("linear", "div", "same"):
            raise ValueError(f"weighting must be linear, div or same, not {weighting!r}")
        self.redis = client
        self.prefix = key_prefix
        self.k, self.sample_size, self.weighting, self.idf, self.max_len = k, sample_size, weighting, idf, max_len
        self.posting_cap = posting_cap or sample_size + 1  # + 1: the asking session itself may be among them
        self.ttl_s = ttl_s
        self.popular_size = popular_size
        # The popularity fill is re-read when the stream's event time has moved on by `popular_refresh_ms` (0: after
        # every observe, as the offline model would see it; the figures differ in the fourth decimal at 60 s).
        self.popular_refresh_ms = popular_refresh_ms
        self._popular: list[str] | None = None
        self._popular_read_at_ms = 0  # the latest observed event time when the fill was read
        self._observed_ms = 0  # the latest event time observed

    # --- keys -------------------------------------------------------------------------------------
    def _session_key(self, session_id: str) -> str:
        return f"{self.prefix}{{s:{session_id}}}:knn-items"

    def _posting_key(self, item_id: str) -> str:
        return f"{self.prefix}{{i:{item_id}}}:knn-sessions"

    def _counts_key(self, shard: int) -> str:
        return f"{self.prefix}{{knn:{shard}}}:item-sessions"

    def _sessions_key(self, shard: int) -> str:
        return f"{self.prefix}{{knn:{shard}}}:sessions"

    # --- learning from the stream ---------------------------------------------------------------
    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """Add the batch's product events: one pipelined read of the sessions' items, one pipelined write."""
        last_ms: dict[str, int] = {}
        items: dict[str, dict[str, None]] = defaultdict(dict)
        for event in events:
            item = getattr(event, "item_id", None)
            if event.type in _ITEM_EVENTS and item:
                last_ms[event.session_id] = max(last_ms.get(event.session_id, 0), event.ts_ms)
                items[event.session_id][item] = None
        if not last_ms:
            return
        sessions = list(last_ms)
        read = RawPipeline(self.redis)
        for session in sessions:
            read.execute_command("SMEMBERS", self._session_key(session))
        known = read.execute()
        write = RawPipeline(self.redis)
        for session, stored in zip(sessions, known, strict=True):
            old = {m.decode() for m in stored}
            new = [i for i in items[session] if i not in old]
            session_key = self._session_key(session)
            if not old:
                write.execute_command("INCR", self._sessions_key(shard_of(session)))
            if new:
                write.execute_command("SADD", session_key, *new)
                for item in new:
                    write.execute_command("ZINCRBY", self._counts_key(shard_of(item)), 1, item)
            write.execute_command("EXPIRE", session_key, self.ttl_s)
            when = last_ms[session]
            for item in old:  # the session is now as recent as its last event in every item's list
                posting = self._posting_key(item)
                write.execute_command("ZADD", posting, "GT", when, session)
                write.execute_command("EXPIRE", posting, self.ttl_s)
            for item in new:  # a new member: the list is cut back to the `posting_cap` most recent
                posting = self._posting_key(item)
                write.execute_command("ZADD", posting, "GT", when, session)
                write.execute_command("ZREMRANGEBYRANK", posting, 0, -(self.posting_cap + 1))
                write.execute_command("EXPIRE", posting, self.ttl_s)
        write.execute()
        self._observed_ms = max(self._observed_ms, *last_ms.values())
        if self._observed_ms - self._popular_read_at_ms >= self.popular_refresh_ms:
            self._popular = None

    # --- scoring ----------------------------------------------------------------------------------
    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        return [answer.scored() for answer in self.recommend_columns(requests)]

    def recommend_columns(self, requests: Sequence[RecommendationRequest]) -> list[RankedColumns]:
        plans = self._neighbours(requests)
        members = self._session_items({s for plan in plans if plan for s, _ in plan.neighbours})
        # Every neighbour item of the batch gets a code in id order, so a stable sort by code is the tie by id; a
        # request's scores are then one weighted bincount over its neighbours' items, summed in the order the
        # dictionary loop summed them (the same floats).
        names = sorted({i for items in members.values() for i in items})
        code = {name: j for j, name in enumerate(names)}
        name_of = np.array(names, dtype=object)
        session_codes = {s: np.fromiter(map(code.__getitem__, items), np.int64, len(items))
                         for s, items in members.items()}
        item_weight = None
        if self.idf:
            idf = self._idf(set(names))
            item_weight = np.array([idf[name] for name in names], np.float64)
        out: list[RankedColumns] = []
        for request, plan in zip(requests, plans, strict=True):
            if request.kind != PRODUCT:
                out.append(RankedColumns([], []))  # product sessions only, as the offline model: nothing on tools
                continue
            cap = request.k + len(request.exclude)
            items: list[str] = []
            values: list[float] = []
            positive = 0
            if plan and plan.neighbours:
                arrays = [session_codes[session] for session, _ in plan.neighbours]
                codes = np.concatenate(arrays)
                weights = np.repeat([similarity for _, similarity in plan.neighbours], [len(a) for a in arrays])
                if item_weight is not None:
                    weights = weights * item_weight[codes]
                totals = np.bincount(codes, weights, minlength=len(names))
                scored = np.flatnonzero(totals > 0)
                positive = len(scored)
                top = scored[np.lexsort((scored, -totals[scored]))][:cap]  # score, then id
                items, values = name_of[top].tolist(), totals[top].tolist()
            # The fill is read only when the neighbours leave the list short (most requests never need it).
            out.append(_ranked(items, values, self._popular_items() if positive < cap else [], request))
        return out

    def _neighbours(self, requests: Sequence[RecommendationRequest]) -> list[_Plan | None]:
        """Per request: the query weights and the `k` most similar of the `sample_size` most recent sessions."""
        asked: list[tuple[RecommendationRequest, list[str], list[str]]] = []
        read = RawPipeline(self.redis)
        for request in requests:
            recent = list(request.context.recent_items) if request.context and request.kind == PRODUCT else []
            distinct = list(dict.fromkeys(recent))
            for item in distinct:
                # Raw: without `withscores` redis-py leaves the reply alone (its legacy RESP2-shape conversion of
                # every score cost more than the whole scoring); `_score_pairs` reads either protocol's shape.
                read.execute_command("ZREVRANGE", self._posting_key(item), 0, self.sample_size, "WITHSCORES")
            asked.append((request, recent, distinct))
        postings = iter(read.execute())
        plans: list[_Plan | None] = []
        for request, recent, distinct in asked:
            own = request.context.session_id if request.context else None
            lists: dict[str, list[tuple[str, float]]] = {}
            for item in distinct:
                others = [(session, ts) for session, ts in _score_pairs(next(postings)) if session != own]
                if others:
                    lists[item] = others[: self.sample_size]
            weights = query_weights([i for i in recent if i in lists], self.max_len, self.weighting)
            plans.append(_Plan(request, weights, self._choose(weights, lists)) if weights else None)
        return plans

    def _choose(self, weights: dict[str, float], lists: dict[str, list[tuple[str, float]]]) -> list[tuple[str, float]]:
        similarity: dict[str, float] = defaultdict(float)
        recency: dict[str, tuple[float, str]] = {}
        for item, weight in weights.items():  # summed in query order, as the offline model sums
            for session, ts in lists[item]:
                similarity[session] += weight
                recency[session] = (ts, session)
        by_time = sorted(similarity, key=recency.__getitem__)[-self.sample_size:]
        if len(by_time) > self.k:  # the k most similar, ties to the more recent; then back in time order
            best = sorted(range(len(by_time)), key=lambda j: (-similarity[by_time[j]], -j))[: self.k]
            by_time = [by_time[j] for j in sorted(best)]
        return [(s, similarity[s]) for s in by_time]

    def _session_items(self, sessions: set[str]) -> dict[str, list[str]]:
        ordered = sorted(sessions)
        read = RawPipeline(self.redis)
        for session in ordered:
            read.execute_command("SMEMBERS", self._session_key(session))
        return {s: [m.decode() for m in found] for s, found in zip(ordered, read.execute(), strict=True)}

    def _idf(self, items: set[str]) -> dict[str, float]:
        ordered = sorted(items)
        read = self.redis.pipeline(transaction=False)
        for shard in range(SHARDS):
            read.get(self._sessions_key(shard))
        for item in ordered:
            read.zscore(self._counts_key(shard_of(item)), item)
        replies = read.execute()
        n = float(sum(int(total or 0) for total in replies[:SHARDS]))
        counts = replies[SHARDS:]
        return {i: float(np.log(n / max(float(c or 0), 1.0))) for i, c in zip(ordered, counts, strict=True)}

    def _popular_items(self) -> list[str]:
        """Items in the most sessions, ties by id (read with every tie at the cut, so the order is exact).

        Each shard gives its own first `popular_size` in that order; the overall first ones are among them.
        """
        if self._popular is None:
            read = RawPipeline(self.redis)
            for shard in range(SHARDS):
                read.execute_command("ZREVRANGE", self._counts_key(shard), 0, self.popular_size - 1, "WITHSCORES")
            tops = [_score_pairs(reply) for reply in read.execute()]
            # Members tied at a shard's cut come back in id order, so the first `popular_size` of them are the ones
            # the exact order keeps: the limit loses nothing (on a long tail thousands of items tie at the cut).
            read = RawPipeline(self.redis)
            for shard, top in enumerate(tops):
                if top:
                    cut = top[-1][1]
                    read.execute_command("ZRANGEBYSCORE", self._counts_key(shard), cut, cut, "WITHSCORES", "LIMIT", 0,
                                         self.popular_size)
            tied = [_score_pairs(reply) for reply in read.execute()]
            merged = {m: s for rows in [*tops, *tied] for m, s in rows}
            self._popular = sorted(merged, key=lambda i: (-merged[i], i))[: self.popular_size]
            self._popular_read_at_ms = self._observed_ms
        return self._popular


def _score_pairs(reply: list) -> list[tuple[str, float]]:
    """`(member, score)` pairs of a raw `ZREVRANGE ... WITHSCORES` reply: nested pairs (RESP3) or flat (RESP2)."""
    if not reply:
        return []
    if isinstance(reply[0], list | tuple):
        return [(m.decode(), float(ts)) for m, ts in reply]
    return [(reply[j].decode(), float(reply[j + 1])) for j in range(0, len(reply), 2)]


def _ranked(items: list[str], values: list[float], popular: list[str], request: RecommendationRequest) -> RankedColumns:
    """The positively scored `items` first (best first, ties by id, as given), popularity after (scored minus its
    rank), without the excluded: as `SessionKNNRecommender.recommend` ranks."""
    exclude = request.exclude
    if len(items) >= request.k and exclude.isdisjoint(items[: request.k]):
        return RankedColumns(items[: request.k], values[: request.k])  # nothing to skip: the first k as they are
    chosen = set(items)
    ranked = items + [i for i in popular if i not in chosen]
    out_items: list[str] = []
    out_values: list[float] = []
    for rank, item in enumerate(ranked):
        if item in exclude:
            continue
        out_items.append(item)
        out_values.append(values[rank] if rank < len(values) else -float(rank))
        if len(out_items) == request.k:
            break
    return RankedColumns(out_items, out_values)
