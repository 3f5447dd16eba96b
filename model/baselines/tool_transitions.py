"""Streaming tool transitions: after a user finishes tool A, which tools did users go on to use next.

Tools are used in sequences (crop, then compress, then convert): what follows what says more than what co-occurs.
Each finished task adds a directed count previous -> this tool for the user's `window` previous distinct tools (1
for the tool just before, 1/4 for the one before that, 1/9 for the third), and one to the tool's popularity. A tool
trigger is answered from the directed lists of the tool just finished and, with a window above 1, the user's earlier
tools (most recent first, weighted 1, 1/2, 1/3 ... by the same merge as the co-occurrence model), popularity filling
the rest; only tool requests are answered. The window is 1 (first order: what followed the tool just finished),
chosen on a validation replay before the evaluated window (the second quarter of a 60,000-event simulation after the
first as warm-up; the evaluated window is the second half): HR@5 0.577 with 1, 0.560 with 3, on 352 tool triggers.
State lives in Redis under its own keys, sharded by tool like the co-occurrence model's (`next:{next:<shard>}:tool:A`,
`tpop:{next:<shard>}:tool`), so it runs beside the co-occurrence model in one namespace, and observation is
idempotent by event id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from model.baselines.session_cooccurrence import Increments, SessionCooccurrenceRecommender
from model.recommender import RecommendationRequest, ScoredItem
from streamrec.events import TOOL, Event, TaskCompleted
from streamrec.session_store import SessionContext


class ToolTransitionRecommender(SessionCooccurrenceRecommender):
    name = "tool-transitions"
    version = "1"
    shard_tag, popularity_name, list_name, kinds = "next", "tpop", "next", (TOOL,)

    def __init__(self, client, key_prefix: str, window: int = 1, **kwargs) -> None:
        super().__init__(client, key_prefix, window=window, **kwargs)

    def _increments(self, event: Event, context: SessionContext) -> Increments:
        if not isinstance(event, TaskCompleted):
            return {}
        tool = event.tool_id
        previous = [t for t in dict.fromkeys(context.consumed_ids(TOOL)) if t != tool][: self.window]
        increments: Increments = defaultdict(float)
        increments[(TOOL, None, tool)] += 1.0
        for distance, earlier in enumerate(previous, start=1):
            increments[(TOOL, earlier, tool)] += 1.0 / distance**2
        return increments

    def recommend_batch(self, requests):
        tools = [j for j, r in enumerate(requests) if r.kind == TOOL]
        out: list[list[ScoredItem]] = [[] for _ in requests]
        asked = [without_used_tools(requests[j]) for j in tools]
        for j, answer in zip(tools, super().recommend_batch(asked), strict=True):
            out[j] = answer
        return out

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]


def without_used_tools(request: RecommendationRequest) -> RecommendationRequest:
    """The request with every tool its session context shows as used (and the one just finished) excluded: the
    filters' consumed set is read before the batch, so a tool used earlier in the same batch is only here. (The
    co-occurrence model blocks them as its seeds; this model's only seed is the finished tool.)"""
    used = set(request.context.consumed_ids(TOOL)) if request.context is not None else set()
    if request.trigger_item:
        used.add(request.trigger_item)
    return replace(request, exclude=request.exclude | used) if used - request.exclude else request
