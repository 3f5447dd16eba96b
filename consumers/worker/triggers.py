"""Trigger rules: which events deserve a recommendation, and of what kind."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from streamrec.events import PRODUCT, TOOL, AddToCart, Event, PageView, Purchase, TaskCompleted
from streamrec.session_store import SessionContext
from streamrec.settings import Settings


@dataclass(frozen=True)
class Trigger:
    kind: str  # what to recommend: "product" or "tool"
    reason: str
    trigger_item: str | None


def trigger_for(event: Event, context: SessionContext, settings: Settings) -> Trigger | None:
    """The trigger an event fires under the configured rules, or None."""
    if isinstance(event, TaskCompleted) and settings.trigger_on_task_completed:
        return Trigger(TOOL, f"task completed with {event.tool_id}: a tool not used yet", event.tool_id)
    if isinstance(event, AddToCart) and settings.trigger_on_add_to_cart:
        return Trigger(PRODUCT, f"added {event.item_id} to cart: complementary items", event.item_id)
    if isinstance(event, Purchase) and settings.trigger_on_purchase:
        return Trigger(PRODUCT, f"bought {event.item_id}: complementary items", event.item_id)
    n = settings.trigger_every_nth_page_view
    if isinstance(event, PageView) and n > 0 and context.page_view_ordinal > 0 and context.page_view_ordinal % n == 0:
        return Trigger(PRODUCT, f"page view {context.page_view_ordinal} of the session", event.item_id)
    return None


def expected_trigger_ids(events: Iterable[Event], settings: Settings) -> set[str]:
    """Which events of an ordered stream fire a trigger, computed offline (benchmarks and tests check with it)."""
    page_views: dict[str, int] = defaultdict(int)
    fired: set[str] = set()
    seen: set[str] = set()
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        ordinal = 0
        if isinstance(event, PageView):
            page_views[event.session_id] += 1
            ordinal = page_views[event.session_id]
        context = SessionContext(user_id=event.user_id, session_id=event.session_id, page_view_ordinal=ordinal)
        if trigger_for(event, context, settings) is not None:
            fired.add(event.event_id)
    return fired
