"""1,000 simulated events through the real broker and Redis: each trigger notified once, nothing filtered leaks."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest

from producers.simulator import simulate
from streamrec.events import PRODUCT, TOOL
from streamrec.notifications import decode_notification, notification_id_for
from tests.pipeline_helpers import (
    expected_triggers,
    run_one_worker_over,
    seed_catalogue,
)

pytestmark = pytest.mark.integration


def test_every_trigger_yields_exactly_one_unfiltered_notification(settings):
    world, events = simulate(1000, seed=11)
    seed_catalogue(settings, world)
    triggers = expected_triggers(events, settings.trigger_every_nth_page_view)
    assert len(triggers) > 100  # the stream really exercises every trigger rule
    assert {e.type for e in events if e.event_id in triggers} >= {"page_view", "task_completed", "purchase"}

    running, records = run_one_worker_over(settings, events)

    notifications = [decode_notification(r.value) for r in records]
    per_trigger = Counter(n.trigger_event_id for n in notifications)
    assert max(per_trigger.values()) == 1
    assert set(per_trigger) <= triggers
    silent = triggers - set(per_trigger)  # allowed only when nothing is left to offer (checked below)
    assert len(silent) < 0.1 * len(triggers)
    assert all(n.notification_id == notification_id_for(n.trigger_event_id) for n in notifications)

    # Nothing the user had already bought/used, nor anything notified to them within the cooldown.
    by_id = {e.event_id: e for e in events}
    order = {e.event_id: i for i, e in enumerate(events)}
    consumed: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, e in enumerate(events):
        if e.type == "purchase":
            consumed[e.user_id].append((i, f"{PRODUCT}:{e.item_id}"))
        elif e.type == "task_completed":
            consumed[e.user_id].append((i, f"{TOOL}:{e.tool_id}"))
    cooldown = timedelta(seconds=settings.notify_cooldown_s)
    sent_before: dict[str, list] = defaultdict(list)
    catalogue = {PRODUCT: {f"{PRODUCT}:{p}" for p in world.product_ids}, TOOL: {f"{TOOL}:{t}" for t in world.tool_ids}}
    notified_by_trigger = {n.trigger_event_id: n for n in notifications}
    for trigger_id in sorted(triggers, key=order.get):
        trigger = by_id[trigger_id]
        kind = TOOL if trigger.type == "task_completed" else PRODUCT
        used = {member for at, member in consumed[trigger.user_id] if at <= order[trigger_id]}
        recent = {m for ts, ms in sent_before[trigger.user_id] if trigger.ts - ts < cooldown for m in ms}
        n = notified_by_trigger.get(trigger_id)
        if n is None:
            assert catalogue[kind] <= used | recent, f"{trigger_id} had candidates left but was not notified"
            continue
        offered = {f"{i.kind}:{i.item_id}" for i in n.items}
        assert not offered & used, f"{trigger_id} offered consumed items {offered & used}"
        assert not offered & recent, f"{trigger_id} re-offered {offered & recent}"
        assert {i.kind for i in n.items} == {kind}
        assert 1 <= len(n.items) <= settings.recommendations_per_notification
        sent_before[trigger.user_id].append((n.trigger_ts, offered))
