"""The streaming co-occurrence and tool-transition models answer exactly as their scoring is specified, on a
simulated stream: a pure-Python reference (counts from the events and their session contexts, trimmed as the
models trim, merged as their docstrings say) gives the same lists, the same scores and the same similar items.

Written against the single-script models before their keys were sharded for Redis Cluster (issue 14), and kept
passing after: the sharded layout changes where the counts live, not what is recommended."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace

import pytest

from model.baselines.session_cooccurrence import EVENT_WEIGHT, SessionCooccurrenceRecommender
from model.baselines.tool_session_transitions import ToolSessionTransitionRecommender
from model.baselines.tool_transitions import ToolTransitionRecommender
from model.recommender import RecommendationRequest
from producers.simulator import simulate
from streamrec.events import PRODUCT, TOOL, TaskCompleted
from streamrec.session_store import SessionStore

pytestmark = pytest.mark.integration

BATCH = 250
CAP = 500  # the models' default list length (max_co_items, max_list)


class ZSets:
    """Sorted sets as Redis keeps them: ZINCRBY in arrival order, ZREVRANGE ties by member descending, and the
    models' trim (past 1.2 x cap, down to cap, dropping the lowest by score then member)."""

    def __init__(self) -> None:
        self.sets: dict[tuple, dict[str, float]] = defaultdict(dict)

    def add(self, key: tuple, member: str, amount: float) -> None:
        found = self.sets[key]
        found[member] = found.get(member, 0.0) + amount

    def seed(self, key: tuple, members) -> None:
        for member in members:
            self.sets[key].setdefault(member, 0.0)

    def top(self, key: tuple, n: int | None = None) -> list[tuple[str, float]]:
        ranked = sorted(self.sets.get(key, {}).items(), key=lambda p: (p[1], p[0]), reverse=True)
        return ranked if n is None else ranked[:n]

    def trim(self, keys) -> None:
        for key in keys:
            found = self.sets[key]
            if len(found) > CAP * 1.2:
                for member, _ in sorted(found.items(), key=lambda p: (p[1], p[0]))[: len(found) - CAP]:
                    del found[member]


class Reference:
    """What the three models should hold and answer, computed from the events alone."""

    def __init__(self) -> None:
        self.co, self.next, self.session_next = ZSets(), ZSets(), ZSets()
        self.seen: dict[str, set[str]] = defaultdict(set)  # model -> event ids counted
        self.last_tool: dict[str, tuple[str, str]] = {}

    def observe(self, events, contexts) -> None:
        touched: dict[str, set] = defaultdict(set)
        for event, context in zip(events, contexts, strict=True):
            self._cooccurrence(event, context, touched["co"])
            self._transitions(event, context, touched["next"])
            self._session_transitions(event, context, touched["session"])
        self.co.trim(touched["co"])
        self.next.trim(touched["next"])
        self.session_next.trim(touched["session"])

    def _counted(self, model: str, event) -> bool:
        if event.event_id in self.seen[model]:
            return False
        self.seen[model].add(event.event_id)
        return True

    def _cooccurrence(self, event, context, touched: set) -> None:
        """Weight w to the item's popularity; w / d to both directions between it and the d-th item before it."""
        item = getattr(event, "item_id", None)
        if event.type in ("page_view", "add_to_cart", "purchase") and item:
            kind, previous = PRODUCT, [i for i in context.recent_items[1:6] if i != item]
        elif isinstance(event, TaskCompleted):
            kind, item = TOOL, event.tool_id
            previous = [t for t in context.consumed_ids(TOOL) if t != item][:5]
        else:
            return
        if not self._counted("co", event):
            return
        weight = EVENT_WEIGHT[event.type]
        adds: dict[tuple, float] = defaultdict(float)  # one event's amounts are summed before they are added
        adds[("pop", kind), item] += weight
        for distance, other in enumerate(previous, start=1):
            adds[("co", kind, item), other] += weight / distance
            adds[("co", kind, other), item] += weight / distance
        for (key, member), amount in adds.items():
            self.co.add(key, member, amount)
            touched.add(key)

    def _transitions(self, event, context, touched: set) -> None:
        """One to the tool's popularity, one to the tool just before it -> this tool."""
        if not isinstance(event, TaskCompleted) or not self._counted("next", event):
            return
        tool = event.tool_id
        self.next.add(("pop", TOOL), tool, 1.0)
        touched.add(("pop", TOOL))
        before = [t for t in context.consumed_ids(TOOL) if t != tool][:1]
        for earlier in before:
            self.next.add(("co", TOOL, earlier), tool, 1.0)
            touched.add(("co", TOOL, earlier))

    def _session_transitions(self, event, context, touched: set) -> None:
        """One to the tool's popularity; one to previous -> tool when the user's last finished tool, in this same
        session, was the previous one of the session context."""
        if not isinstance(event, TaskCompleted) or not self._counted("session", event):
            return
        tool = event.tool_id
        self.session_next.add(("pop", TOOL), tool, 1.0)
        touched.add(("pop", TOOL))
        previous = next((t for t in context.consumed_ids(TOOL) if t != tool), "")
        last = self.last_tool.get(event.user_id)
        if previous and last is not None and last[0] == event.session_id and last[1] == previous != tool:
            self.session_next.add(("co", TOOL, previous), tool, 1.0)
            touched.add(("co", TOOL, previous))
        self.last_tool[event.user_id] = (event.session_id, tool)

    # --- answers ------------------------------------------------------------------------------------------------
    def cooccurrence(self, counts: ZSets, request: RecommendationRequest, seeds: list[str], k: int,
                     neighbours: int = 50) -> list[tuple[str, float]]:
        """Seed s (1-based, most recent first) adds score / (its list's top score) / s; popularity fills below."""
        blocked = set(request.exclude) | set(seeds)
        scores: dict[str, float] = {}
        for position, seed in enumerate(seeds, start=1):
            found = counts.top(("co", request.kind, seed), neighbours)
            top = found[0][1] if found and found[0][1] > 0 else 1.0
            for item, score in found:
                if item not in blocked:
                    scores[item] = scores.get(item, 0.0) + (score / top) / position
        ranked = sorted(scores, key=lambda i: (-scores[i], i))[:k]
        out = [(i, scores[i]) for i in ranked]
        popular = counts.top(("pop", request.kind))
        top_pop = popular[0][1] if popular and popular[0][1] > 0 else 1.0
        for item, score in popular:
            if len(out) >= k:
                break
            if item not in blocked and item not in ranked:
                out.append((item, 0.01 * score / top_pop))
                ranked.append(item)
        return out

    def session_transitions(self, request: RecommendationRequest, prior: float = 1.0,
                            reads: int = 200) -> list[tuple[str, float]]:
        """(next[t] + prior x t's share of the popularity read) / (transitions read + prior)."""
        popular = self.session_next.top(("pop", TOOL), reads)
        after = self.session_next.top(("co", TOOL, request.trigger_item), reads) if request.trigger_item else []
        pop_total = sum(max(s, 0.0) for _, s in popular)
        after_total = sum(s for _, s in after)
        scores: dict[str, float] = {}
        shares = [(t, prior * max(s, 0.0) / pop_total if pop_total > 0 else 0.0) for t, s in popular]
        for tool, amount in shares + after:
            if tool not in request.exclude:
                scores[tool] = scores.get(tool, 0.0) + amount
        ranked = sorted(scores, key=lambda t: (-scores[t], t))[: request.k]
        return [(t, scores[t] / (after_total + prior)) for t in ranked]


def _seeds(request: RecommendationRequest, window: int) -> list[str]:
    seeds = [request.trigger_item] if request.trigger_item else []
    if request.context is not None:
        seeds += (request.context.consumed_ids(TOOL) if request.kind == TOOL
                  else list(request.context.recent_items or request.context.user_recent_items))
    return list(dict.fromkeys(s for s in seeds if s))[:window]


def _without_used(request: RecommendationRequest) -> RecommendationRequest:
    used = set(request.context.consumed_ids(TOOL)) if request.context is not None else set()
    if request.trigger_item:
        used.add(request.trigger_item)
    return replace(request, exclude=request.exclude | used)


def _requests(events, contexts, products: list[str], tools: list[str]) -> list[RecommendationRequest]:
    """Triggers from the stream (with their contexts), some with excludes of popular and random items, a few
    without context or with an unknown trigger; k from 1 to 30."""
    rng = random.Random(5)
    requests = []
    for n, (event, context) in enumerate(zip(events, contexts, strict=True)):
        tool = isinstance(event, TaskCompleted)
        item = event.tool_id if tool else getattr(event, "item_id", None)
        if not item or n % (2 if tool else 9):
            continue
        pool = tools if tool else products
        exclude = frozenset(rng.sample(pool[:40], rng.randint(0, 6)) + rng.sample(pool, rng.randint(0, 3)))
        requests.append(RecommendationRequest(event.user_id, rng.choice([1, 5, 10, 30]), kind=TOOL if tool else PRODUCT,
                                              context=None if n % 11 == 0 else context, exclude=exclude,
                                              trigger_item="never-seen" if n % 13 == 0 else item))
    return requests


def _pairs(answer) -> list[tuple[str, float]]:
    return [(s.item_id, s.score) for s in answer]


def _same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> bool:
    return [i for i, _ in got] == [i for i, _ in want] and all(
        g == pytest.approx(w, rel=1e-12, abs=1e-15) for (_, g), (_, w) in zip(got, want, strict=True))


def test_the_three_models_answer_as_the_reference_on_a_simulated_stream(settings, redis_client):
    world, events = simulate(3000, seed=31)
    store = SessionStore(redis_client, settings)
    # The fill read after every observe, as the reference reads it (serving keeps it for 60 s of event time).
    cooccurrence = SessionCooccurrenceRecommender(redis_client, settings.key_prefix, popular_refresh_ms=0)
    transitions = ToolTransitionRecommender(redis_client, settings.key_prefix)
    session_transitions = ToolSessionTransitionRecommender(redis_client, settings.key_prefix)
    models = (cooccurrence, transitions, session_transitions)
    reference = Reference()
    # The catalogue known before traffic: 2000 products at 0, so the first batch already trims popularity.
    cooccurrence.seed_catalogue(PRODUCT, world.product_ids)
    cooccurrence.seed_catalogue(TOOL, world.tool_ids)
    reference.co.seed(("pop", PRODUCT), world.product_ids)
    reference.co.seed(("pop", TOOL), world.tool_ids)

    all_contexts = []
    batches = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
    for number, batch in enumerate(batches):
        contexts = store.apply_batch(batch)
        all_contexts += contexts
        for model in models:
            model.observe(batch, contexts)
        reference.observe(batch, contexts)
        if number == 5:  # a redelivered batch: counted once by every model
            again = store.apply_batch(batches[2])
            for model in models:
                model.observe(batches[2], again)
            reference.observe(batches[2], again)

    products = [i for i, _ in reference.co.top(("pop", PRODUCT))]
    tools = [t for t, _ in reference.co.top(("pop", TOOL))]
    requests = _requests(events, all_contexts, products, tools)
    assert sum(r.kind == TOOL for r in requests) > 40 and sum(r.kind == PRODUCT for r in requests) > 150

    got = [_pairs(a) for a in cooccurrence.recommend_batch(requests)]
    want = [reference.cooccurrence(reference.co, r, _seeds(r, 5), r.k) for r in requests]
    assert sum(_same(g, w) for g, w in zip(got, want, strict=True)) == len(requests)
    assert sum(1 for w in want if w and w[0][1] > 0.01) > 100  # co-occurrence answers, not only the fill
    assert sum(1 for w in want if len(w) == 30 and w[-1][1] <= 0.01) > 10  # and fills from popularity

    got = [_pairs(a) for a in transitions.recommend_batch(requests)]
    want = [reference.cooccurrence(reference.next, _without_used(r), _seeds(r, 1), r.k) if r.kind == TOOL else []
            for r in requests]
    assert sum(_same(g, w) for g, w in zip(got, want, strict=True)) == len(requests)

    got = [_pairs(a) for a in session_transitions.recommend_batch(requests)]
    want = [reference.session_transitions(_without_used(r)) if r.kind == TOOL else [] for r in requests]
    assert sum(_same(g, w) for g, w in zip(got, want, strict=True)) == len(requests)
    assert any(w and w[0][1] > 0.2 for w in want)  # some tools with transitions of their own

    for item in products[:30] + ["never-seen"]:
        assert _same(_pairs(cooccurrence.similar_items(item, 10)), reference.co.top(("co", PRODUCT, item), 10))
    for tool in tools[:10]:
        assert _same(_pairs(cooccurrence.similar_items(tool, 10, kind=TOOL)), reference.co.top(("co", TOOL, tool), 10))
        assert _same(_pairs(transitions.similar_items(tool, 5, kind=TOOL)), reference.next.top(("co", TOOL, tool), 5))
        assert _same(_pairs(session_transitions.similar_items(tool, 5)),
                     reference.session_next.top(("co", TOOL, tool), 5))
