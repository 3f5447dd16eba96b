"""From a batch of events to notifications: session context, triggers, filters, recommend.

Kafka-free on purpose: the worker wraps it with consume/produce/commit, and replay drives the very same
code in its own namespace, so offline evaluation judges what production does.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from consumers.worker.triggers import Trigger, trigger_for
from model.recommender import RecommendationRequest, Recommender, RecommenderSource, ScoredItem
from streamrec.events import Event, utc_now
from streamrec.notifications import Notification, RecommendedItem, notification_id_for
from streamrec.session_store import FilterQuery, SentNotification, SessionContext, SessionStore
from streamrec.settings import Settings
from streamrec.stage_timing import StageTimes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Fired:
    """An event that fired a trigger, with the session context it fired in."""

    event: Event
    context: SessionContext
    trigger: Trigger


@dataclass
class PipelineStats:
    events: int = 0
    duplicates: int = 0
    triggers: int = 0
    notifications: int = 0
    already_notified: int = 0
    no_candidates: int = 0
    by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class RecommendationPipeline:
    """prepare(events) -> notifications to publish; confirm(notifications) once they are flushed."""

    def __init__(
        self,
        store: SessionStore,
        source: RecommenderSource,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.source = source
        self.settings = settings
        self.clock = clock
        self.stats = PipelineStats()
        self.stages = StageTimes()  # where the batches' time went (the worker adds its Kafka stages)

    def prepare(self, events: Sequence[Event]) -> list[Notification]:
        """Apply and observe the batch, then recommend for its triggers: the notifications to publish."""
        stage = self.stages.stage
        with stage("redis apply"):
            contexts = self.store.apply_batch(events)
        recommender = self.source.current()
        with stage("observe"), self.stages.active():
            self._observe(events, contexts, recommender)
        with stage("triggers"):
            fired = self._fired_triggers(events, contexts)
        if not fired:
            return []
        self.stats.triggers += len(fired)
        with stage("filters (redis read)"):
            pending, requests = self._requests(fired)
        with stage("recommend"), self.stages.active():
            ranked_lists = recommender.recommend_batch(requests)
        with stage("notifications"):
            notifications = self._notifications(pending, ranked_lists, recommender)
        self.stats.notifications += len(notifications)
        return notifications

    def _observe(
        self, events: Sequence[Event], contexts: Sequence[SessionContext], recommender: Recommender
    ) -> None:
        """Let the model learn the applied events with their contexts (redeliveries too: it dedupes by id)."""
        recommender.observe(events, contexts)
        self.stats.events += len(events)
        self.stats.duplicates += sum(c.duplicate for c in contexts)

    def _fired_triggers(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> list[_Fired]:
        """The events that trigger under the settings, each event id once (a batch may hold a redelivery)."""
        fired: list[_Fired] = []
        seen_triggers: set[str] = set()
        for event, context in zip(events, contexts, strict=True):
            trigger = trigger_for(event, context, self.settings)
            if trigger is not None and event.event_id not in seen_triggers:
                seen_triggers.add(event.event_id)
                fired.append(_Fired(event, context, trigger))
        return fired

    def _requests(self, fired: Sequence[_Fired]) -> tuple[list[_Fired], list[RecommendationRequest]]:
        """One request per trigger not notified before, excluding what the user consumed or was just sent.

        Returns the triggers still pending and their requests, in the same order.
        """
        filters = self.store.filters_batch([FilterQuery.for_event(f.event) for f in fired])
        k = self.settings.recommendations_per_notification
        pending: list[_Fired] = []
        requests: list[RecommendationRequest] = []
        earlier_in_batch: dict[str, int] = defaultdict(int)  # user -> triggers before this one in the batch
        for one, user_filters in zip(fired, filters, strict=True):
            if user_filters.trigger_already_notified:
                self.stats.already_notified += 1  # a redelivery: the notification went out before
                continue
            event, trigger = one.event, one.trigger
            pending.append(one)
            earlier = earlier_in_batch[event.user_id]
            earlier_in_batch[event.user_id] += 1
            requests.append(
                RecommendationRequest(
                    user_id=event.user_id,
                    k=k * (1 + earlier),  # head-room for items taken by this user's earlier triggers
                    kind=trigger.kind,
                    context=one.context,
                    exclude=frozenset(user_filters.excluded(trigger.kind)),
                    now_ms=event.ts_ms,
                    trigger_item=trigger.trigger_item,
                )
            )
        return pending, requests

    def _notifications(
        self, pending: Sequence[_Fired], ranked_lists: Sequence[Sequence[ScoredItem]], recommender: Recommender
    ) -> list[Notification]:
        """Top-k items per trigger, minus those this user's earlier triggers in the batch took (in cooldown)."""
        k = self.settings.recommendations_per_notification
        notifications: list[Notification] = []
        # Items offered by this user's earlier triggers in this batch (not yet in Redis), by event time.
        taken_in_batch: dict[str, list[tuple[int, set[str]]]] = defaultdict(list)
        cooldown_ms = self.settings.notify_cooldown_s * 1000
        for one, ranked in zip(pending, ranked_lists, strict=True):
            event, trigger = one.event, one.trigger
            taken = {
                m for ts_ms, members in taken_in_batch[event.user_id] if event.ts_ms - ts_ms < cooldown_ms
                for m in members
            }
            items = [
                RecommendedItem(item_id=s.item_id, score=s.score, kind=trigger.kind)
                for s in ranked
                if f"{trigger.kind}:{s.item_id}" not in taken
            ][:k]
            if not items:
                self.stats.no_candidates += 1
                log.warning("no candidates for user=%s trigger=%s", event.user_id, event.event_id)
                continue
            taken_in_batch[event.user_id].append((event.ts_ms, {f"{trigger.kind}:{i.item_id}" for i in items}))
            notifications.append(self._notification(event, trigger, items, recommender))
            self.stats.by_reason[event.type] += 1
        return notifications

    def _notification(
        self, event: Event, trigger: Trigger, items: list[RecommendedItem], recommender: Recommender
    ) -> Notification:
        """The notification for one trigger; its id comes from the trigger event, so a redelivery gets the same id."""
        return Notification(
            notification_id=notification_id_for(event.event_id),
            user_id=event.user_id,
            session_id=event.session_id,
            items=items,
            model_name=recommender.name,
            model_version=recommender.version,
            reason=trigger.reason,
            trigger_event_id=event.event_id,
            trigger_event_type=event.type,
            trigger_ts=event.ts,
            created_at=self.clock(),
        )

    def confirm(self, notifications: Sequence[Notification]) -> None:
        """Record what was sent (the cooldown filter and redelivery dedupe read this)."""
        with self.stages.stage("record notifications (redis)"):
            self.store.record_notifications(SentNotification.of(n) for n in notifications)
