"""Streaming tool transitions within sessions: after a user finishes tool A, which tools did users use next in it.

Tools are used in sequences (crop, then compress, then convert): what follows what says more than what co-occurs.
Each finished task adds one to the tool's popularity and, when the user finished another tool before it in the same
session, one to the directed count previous -> this tool. Counting only within a session keeps out the pairs a
session boundary makes (the last tool of yesterday's session and the first of today's, which the user's taste picks,
not the tool before). A tool trigger is answered from the list of the tool just finished, shrunk towards popularity
where it has few counts; only tool requests are answered.

State lives in Redis under its own keys: per user the session and tool it last finished, and the counts sharded by
tool like the co-occurrence model's (`tnext:{tnext:<shard>}:tool:A`, `tpop:{tnext:<shard>}:tool`), so it runs beside
the other streaming models in one namespace and on a Redis Cluster. Observation is idempotent by event id, in two
steps of one round trip per node: each user's script decides (and remembers) which tasks are a transition, then one
call per shard adds the counts, deduplicating event ids of its own.
It differs from `tool-transitions` (which the worker serves) in counting only pairs within a session and in shrinking
towards popularity; validation and test replays: docs/models.md, "The next tool after a finished task".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from importlib.resources import files

from model.baselines.session_cooccurrence import (
    Increments,
    ShardedCounts,
    lua_score,
    queue_top,
    score_pairs,
)
from model.baselines.tool_transitions import without_used_tools
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import TOOL, Event, TaskCompleted
from streamrec.redis_connection import SHARDS, LuaScript, RedisClient, ScriptCall
from streamrec.session_store import RedisKeys, SessionContext

_OBSERVE = LuaScript(files("model.baselines").joinpath("lua/tool_session_transitions_observe.lua").read_text())


class ToolSessionTransitionRecommender(Recommender):
    """Score = P(next tool | tool just finished) within sessions, shrunk towards popularity; tool requests only."""

    name = "tool-session-transitions"
    version = "1"

    def __init__(
        self,
        client: RedisClient,
        key_prefix: str,
        prior: float = 1.0,
        reads: int = 200,
        max_list: int = 500,
        observed_window: int = 512,
        observed_ttl_s: int = 7 * 24 * 3600,
        last_tool_ttl_s: int = 24 * 3600,
        applied_window: int = 100_000,
    ) -> None:
        self.redis = client
        self.keys = RedisKeys(key_prefix)
        self.prior = prior  # pseudo-counts spread by popularity over a finished tool's next tools
        self.reads = reads  # entries read per list when answering
        # Observation is idempotent by event id: the newest `observed_window` ids per user are remembered (with
        # whether each was a transition), and the newest `applied_window` ids each shard of the counts added.
        self.observed_window = observed_window
        self.observed_ttl_s = observed_ttl_s
        self.last_tool_ttl_s = last_tool_ttl_s  # a session idle this long is over anyway
        # Transition lists (and the popularity, over every shard) are trimmed to `max_list`.
        self.counts = ShardedCounts(client, key_prefix, "tnext", self.name, "tpop", "tnext", (TOOL,), max_list,
                                    applied_window, observed_ttl_s)

    def _pop_key(self, shard: int) -> str:
        return self.counts.pop_key(TOOL, shard)

    def _next_key(self, tool: str) -> str:
        return self.counts.list_key(TOOL, tool)

    def _observed_key(self, user_id: str) -> str:
        return self.keys.user(user_id) + f":observed:{self.name}"

    def _counted_key(self, user_id: str) -> str:
        return self.keys.user(user_id) + f":transitions:{self.name}"

    def _last_tool_key(self, user_id: str) -> str:
        return self.keys.user(user_id) + f":last-tool:{self.name}"

    # --- learning from the stream -------------------------------------------------------------
    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """Count each finished task once by event id. The session context names the tool used before (its consumed
        list, newest first); the user's script counts the transition only when the user's last-tool hash shows that
        tool was finished last, in this session. Then the shards add one to the tool's popularity and, for a
        transition, one to previous -> tool."""
        tasks = [(event, next((t for t in context.consumed_ids(TOOL) if t != event.tool_id), ""))
                 for event, context in zip(events, contexts, strict=True)
                 if isinstance(event, TaskCompleted) and event.tool_id]
        if not tasks:
            return
        by_user: dict[str, list[int]] = defaultdict(list)  # a user's tasks in batch order
        for index, (event, _) in enumerate(tasks):
            by_user[event.user_id].append(index)
        calls = []
        for user, indices in by_user.items():
            args: list[object] = [self.observed_window, self.observed_ttl_s, self.last_tool_ttl_s, len(indices)]
            for index in indices:
                event, previous = tasks[index]
                args += [event.event_id, str(int(event.ts_ms)), event.session_id, event.tool_id, previous]
            calls.append(ScriptCall(_OBSERVE, [self._observed_key(user), self._counted_key(user),
                                               self._last_tool_key(user)], args))
        transition = [False] * len(tasks)
        for indices, answers in zip(by_user.values(), self.counts.runner.run(calls), strict=True):
            for index, answer in zip(indices, answers, strict=True):
                transition[index] = bool(answer)
        counted = []
        for (event, previous), is_transition in zip(tasks, transition, strict=True):
            increments: Increments = {(TOOL, None, event.tool_id): 1.0}
            if is_transition:
                increments[(TOOL, previous, event.tool_id)] = 1.0
            counted.append((event.event_id, int(event.ts_ms), increments))
        self.counts.add(counted)

    # --- serving ------------------------------------------------------------------------------
    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        """Tool requests answered with one pipelined read per batch (the popularity shards' firsts and the
        finished tools' lists); other kinds get []."""
        tools = [j for j, r in enumerate(requests) if r.kind == TOOL]
        out: list[list[ScoredItem]] = [[] for _ in requests]
        if not tools:
            return out
        asked = [without_used_tools(requests[j]) for j in tools]
        finished = list(dict.fromkeys(r.trigger_item for r in asked if r.trigger_item))
        read = self.redis.pipeline(transaction=False)
        self.counts.queue_popular(read, TOOL, self.reads)
        for tool in finished:
            queue_top(read, self._next_key(tool), self.reads)
        replies = read.execute()
        popular = ShardedCounts.merge_popular(replies[:SHARDS])[: self.reads]
        after = {tool: score_pairs(reply) for tool, reply in zip(finished, replies[SHARDS:], strict=True)}
        for j, request in zip(tools, asked, strict=True):
            followers = [(m.decode(), s) for m, s in after[request.trigger_item]] if request.trigger_item else []
            out[j] = self._scored(request, popular, followers)
        return out

    def _scored(self, request: RecommendationRequest, popular: list[tuple[str, float]],
                after: list[tuple[str, float]]) -> list[ScoredItem]:
        """score(t) = (next[t] + prior x popularity share of t) / (transitions counted + prior), over the first
        `reads` of each list. (What tool_session_transitions_recommend.lua did, step for step.)"""
        pop_total = sum(max(score, 0.0) for _, score in popular)
        after_total = sum(score for _, score in after)
        scores: dict[str, float] = {}
        shares = [(t, self.prior * max(s, 0.0) / pop_total if pop_total > 0 else 0.0) for t, s in popular]
        for tool, amount in shares + after:
            if tool not in request.exclude:
                scores[tool] = scores.get(tool, 0.0) + amount
        ranked = sorted(scores, key=lambda t: (-scores[t], t))[: max(request.k, 0)]
        return [ScoredItem(t, lua_score(scores[t] / (after_total + self.prior))) for t in ranked]

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def similar_items(self, item_id: str, k: int, kind: str = TOOL) -> list[ScoredItem]:
        """The tools most often used right after `item_id` in a session (tools only)."""
        if kind != TOOL:
            return []
        followers = self.redis.zrevrange(self._next_key(item_id), 0, k - 1, withscores=True)
        return [ScoredItem(t.decode(), float(s)) for t, s in followers]

