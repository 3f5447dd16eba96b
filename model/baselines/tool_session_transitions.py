"""Streaming tool transitions within sessions: after a user finishes tool A, which tools did users use next in it.

Tools are used in sequences (crop, then compress, then convert): what follows what says more than what co-occurs.
Each finished task adds one to the tool's popularity and, when the user finished another tool before it in the same
session, one to the directed count previous -> this tool. Counting only within a session keeps out the pairs a
session boundary makes (the last tool of yesterday's session and the first of today's, which the user's taste picks,
not the tool before). A tool trigger is answered from the list of the tool just finished, shrunk towards popularity
where it has few counts; only tool requests are answered.

State lives in Redis under its own keys (`tnext:tool:A`, `tpop:tool`, and per user the session and tool it last
finished), so it runs beside the co-occurrence model in one namespace, and observation is idempotent by event id.
It differs from `tool-transitions` (which the worker serves) in counting only pairs within a session and in shrinking
towards popularity; validation and test replays: docs/models.md, "The next tool after a finished task".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from importlib.resources import files

import redis

from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import TOOL, Event, TaskCompleted
from streamrec.session_store import RedisKeys, SessionContext

_LUA = files("model.baselines").joinpath("lua")
_OBSERVE_LUA = _LUA.joinpath("tool_session_transitions_observe.lua").read_text()
_RECOMMEND_LUA = _LUA.joinpath("tool_session_transitions_recommend.lua").read_text()


class ToolSessionTransitionRecommender(Recommender):
    """Score = P(next tool | tool just finished) within sessions, shrunk towards popularity; tool requests only."""

    name = "tool-session-transitions"
    version = "1"

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str,
        prior: float = 1.0,
        reads: int = 200,
        max_list: int = 500,
        observed_window: int = 512,
        observed_ttl_s: int = 7 * 24 * 3600,
        last_tool_ttl_s: int = 24 * 3600,
    ) -> None:
        self.redis = client
        self.keys = RedisKeys(key_prefix)
        self.prior = prior  # pseudo-counts spread by popularity over a finished tool's next tools
        self.reads = reads  # entries read per list when answering
        self.max_list = max_list  # transition lists are trimmed to this length
        # Observation is idempotent by event id: the newest `observed_window` ids per user are remembered.
        self.observed_window = observed_window
        self.observed_ttl_s = observed_ttl_s
        self.last_tool_ttl_s = last_tool_ttl_s  # a session idle this long is over anyway
        self._observe_script = client.register_script(_OBSERVE_LUA)
        self._recommend_script = client.register_script(_RECOMMEND_LUA)

    def _pop_key(self) -> str:
        return self.keys.global_key(f"tpop:{TOOL}")

    def _next_key(self, tool: str) -> str:
        return self.keys.global_key(f"tnext:{TOOL}:{tool}")

    def _observed_key(self, user_id: str) -> str:
        return self.keys.user(user_id) + f":observed:{self.name}"

    def _last_tool_key(self, user_id: str) -> str:
        return self.keys.user(user_id) + f":last-tool:{self.name}"

    # --- learning from the stream -------------------------------------------------------------
    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """Count each finished task once by event id. The session context names the tool used before (its consumed
        list, newest first); the script counts the transition only when the user's last-tool hash shows that tool
        was finished last, in this session."""
        keys: dict[str, int] = {}
        args: list[object] = []
        observed = 0

        def key(name: str) -> int:
            return keys.setdefault(name, len(keys) + 1)

        for event, context in zip(events, contexts, strict=True):
            if not isinstance(event, TaskCompleted) or not event.tool_id:
                continue
            tool = event.tool_id
            previous = next((t for t in context.consumed_ids(TOOL) if t != tool), "")
            observed += 1
            args += [
                key(self._observed_key(event.user_id)), event.event_id, str(int(event.ts_ms)),
                key(self._last_tool_key(event.user_id)), event.session_id, tool, key(self._pop_key()),
                key(self._next_key(previous)) if previous else 0, previous,
            ]
        if observed:
            self._observe_script(
                keys=list(keys),
                args=[self.max_list, self.observed_window, self.observed_ttl_s, self.last_tool_ttl_s, observed,
                      *args],
            )

    # --- serving ------------------------------------------------------------------------------
    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        """Tool requests answered in one pipelined round trip; other kinds get []."""
        tools = [j for j, r in enumerate(requests) if r.kind == TOOL]
        out: list[list[ScoredItem]] = [[] for _ in requests]
        if not tools:
            return out
        pipe = self.redis.pipeline(transaction=False)
        for j in tools:
            request = _without_used(requests[j])
            finished = request.trigger_item
            keys = [self._pop_key()] + ([self._next_key(finished)] if finished else [])
            self._recommend_script(
                keys=keys,
                args=[request.k, repr(float(self.prior)), self.reads, *request.exclude],
                client=pipe,
            )
        for j, flat in zip(tools, pipe.execute(), strict=True):
            out[j] = [ScoredItem(flat[i].decode(), float(flat[i + 1])) for i in range(0, len(flat), 2)]
        return out

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def similar_items(self, item_id: str, k: int, kind: str = TOOL) -> list[ScoredItem]:
        """The tools most often used right after `item_id` in a session (tools only)."""
        if kind != TOOL:
            return []
        followers = self.redis.zrevrange(self._next_key(item_id), 0, k - 1, withscores=True)
        return [ScoredItem(t.decode(), float(s)) for t, s in followers]


def _without_used(request: RecommendationRequest) -> RecommendationRequest:
    """The request with every tool its session context shows as used (and the one just finished) excluded: the
    filters' consumed set is read before the batch, so a tool used earlier in the same batch is only here."""
    used = set(request.context.consumed_ids(TOOL)) if request.context is not None else set()
    if request.trigger_item:
        used.add(request.trigger_item)
    return replace(request, exclude=request.exclude | used) if used - request.exclude else request
