"""Cut an event-time-ordered stream into batches that end at every possible trigger.

The pipeline lets a model `observe` a whole batch before it recommends for the batch's triggers; a batch
that ends at its only trigger therefore shows the model nothing after that trigger (no leakage), while
runs of non-triggering events still travel in one round trip.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from consumers.worker.triggers import trigger_for
from streamrec.events import Event
from streamrec.session_store import SessionContext
from streamrec.settings import Settings


def leak_free_batches(events: Iterable[Event], settings: Settings, max_batch: int = 500) -> Iterator[list[Event]]:
    """Batches in stream order, each ending right after an event that may trigger under `settings`."""
    page_views: dict[tuple[str, str], int] = defaultdict(int)
    seen: set[str] = set()
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        duplicate = event.event_id in seen
        ordinal = 0
        if not duplicate:
            seen.add(event.event_id)
            if event.type == "page_view":
                page_views[(event.user_id, event.session_id)] += 1
                ordinal = page_views[(event.user_id, event.session_id)]
        # The same rules as the worker, fed the page-view ordinal the session store will compute.
        context = SessionContext(user_id=event.user_id, session_id=event.session_id, page_view_ordinal=ordinal)
        may_trigger = duplicate or trigger_for(event, context, settings) is not None
        if may_trigger or len(batch) >= max_batch:
            yield batch
            batch = []
    if batch:
        yield batch

