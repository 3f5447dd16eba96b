"""`NotificationDispatcher`: one consumed notification -> dedupe, fatigue rules, per-user queue, webhook.

Kafka-free, so tests drive it directly; the consumer loop wraps it with poll/commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from consumers.notifier.fatigue import FatigueRules, decide, item_member
from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.pending_index import PendingSnapshot
from consumers.notifier.push_queue import PushQueue
from consumers.notifier.webhook import WebhookSender
from streamrec.notifications import Notification, encode_notification

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class DispatchOutcome:
    notification_id: str
    status: str  # queued, suppressed, duplicate
    reason: str | None = None  # the fatigue rule, when suppressed
    stream_id: str | None = None
    webhook_delivered: bool | None = None  # None: no webhook configured or not pushed


class NotificationDispatcher:
    def __init__(
        self,
        queue: PushQueue,
        rules: FatigueRules,
        metrics: NotifierMetrics,
        webhook: WebhookSender | None = None,
        webhook_concurrency: int = 8,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.queue = queue
        self.rules = rules
        self.metrics = metrics
        self.webhook = webhook
        self.clock_ms = clock_ms
        self._pool = ThreadPoolExecutor(webhook_concurrency, thread_name_prefix="webhook") if webhook else None

    def _decide_and_enqueue(self, notification: Notification) -> tuple[DispatchOutcome, bytes | None,
                                                                       PendingSnapshot]:
        """The fatigue decision and the user's script; the pending index is the caller's (reserve, settle)."""
        now_ms = self.clock_ms()
        members = [item_member(i) for i in notification.items]
        history = self.queue.history(notification.user_id, members, now_ms)
        created_ms = int(notification.created_at.timestamp() * 1000)
        decision = decide(self.rules, history, notification.items, created_ms, now_ms)
        payload = None
        if decision.allowed:
            payload = encode_notification(notification.model_copy(update={"items": decision.items}))
        result = self.queue.enqueue(
            notification.user_id, notification.notification_id, payload,
            [item_member(i) for i in decision.items], now_ms,
        )
        self.metrics.count_expired(result.expired_by_age, result.expired_by_overflow)
        if result.status == "duplicate":
            self.metrics.duplicates.inc()
            return DispatchOutcome(notification.notification_id, "duplicate"), None, result.pending
        if result.status == "suppressed":
            self.metrics.suppressed.labels(decision.suppressed).inc()
            log.debug("suppressed %s for %s: %s", notification.notification_id, notification.user_id,
                      decision.suppressed)
            outcome = DispatchOutcome(notification.notification_id, "suppressed", decision.suppressed)
            return outcome, None, result.pending
        self.metrics.queued.inc()
        outcome = DispatchOutcome(notification.notification_id, "queued", stream_id=result.stream_id)
        return outcome, payload, result.pending

    def dispatch_batch(self, notifications: Sequence[Notification]) -> list[DispatchOutcome]:
        """Dispatch in order (one user's notifications stay ordered), then post webhooks concurrently and wait.

        The pending index is reserved for the batch's users before, and settled after, one round trip per node each.
        """
        outcomes: list[DispatchOutcome] = []
        snapshots: list[PendingSnapshot] = []
        posts = []
        self.queue.reserve(n.user_id for n in notifications)
        for notification in notifications:
            self.metrics.consumed.inc()
            outcome, payload, pending = self._decide_and_enqueue(notification)
            outcomes.append(outcome)
            snapshots.append(pending)
            if payload is not None and self._pool is not None and self.webhook is not None:
                posts.append((len(outcomes) - 1, self._pool.submit(self.webhook.send, outcome.notification_id,
                                                                   payload)))
        self.queue.settle(snapshots)
        for index, future in posts:
            result = future.result()
            self.metrics.webhook_attempts.inc(result.attempts)
            self.metrics.webhook.labels("delivered" if result.delivered else "failed").inc()
            outcomes[index] = replace(outcomes[index], webhook_delivered=result.delivered)
        return outcomes

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.webhook is not None:
            self.webhook.close()
