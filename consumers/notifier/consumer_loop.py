"""The notifier's Kafka loop: poll `notifications`, dispatch, then commit (and sweep expired queues).

Offsets are committed only after Redis holds the batch's outcomes and its webhooks were attempted; a
redelivered batch is harmless because the dispatcher drops notification ids it has seen. A Redis or Kafka
outage is waited out: the batch in hand is retried with backoff while the partitions are paused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import redis
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from consumers.notifier.dispatcher import NotificationDispatcher, wall_clock_ms
from consumers.notifier.fatigue import FatigueRules
from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.push_queue import PushQueue
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.webhook import WebhookSender
from streamrec.kafka_clients import make_consumer, offsets_after
from streamrec.notifications import Notification, decode_notification
from streamrec.redis_wait import wait_for_redis
from streamrec.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
# Failures of the servers, not of the data: waited out. Anything else is a bug and stops the loop. A Redis Cluster
# that cannot serve a slot answers CLUSTERDOWN or TRYAGAIN, or leaves a slot with no node.
OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ClusterDownError,
           redis.exceptions.TryAgainError, redis.exceptions.SlotNotCoveredError, KafkaError)


class _Stopped(Exception):
    """The service is stopping during an outage: leave without committing (the batch is redelivered)."""


def _where(record: ConsumerRecord) -> str:
    return f'partition="{record.topic}[{record.partition}]" offset="{record.offset}"'


def build_dispatcher(
    settings: Settings, notifier: NotifierSettings, metrics: NotifierMetrics
) -> NotificationDispatcher:
    client = settings.redis_client()
    wait_for_redis(client, settings)  # a notifier started before its Redis waits for it
    webhook = None
    if notifier.webhook_url:
        webhook = WebhookSender(
            notifier.webhook_url,
            notifier.webhook_secret.get_secret_value() if notifier.webhook_secret else None,
            notifier.webhook_max_attempts, notifier.webhook_backoff_s, notifier.webhook_backoff_max_s,
            notifier.webhook_timeout_s,
        )
    return NotificationDispatcher(
        PushQueue(client, settings.key_prefix, notifier), FatigueRules.from_settings(notifier), metrics, webhook,
        notifier.webhook_concurrency,
    )


class NotifierConsumer:
    def __init__(
        self,
        settings: Settings,
        notifier: NotifierSettings,
        dispatcher: NotificationDispatcher,
        consumer: KafkaConsumer | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier
        self.dispatcher = dispatcher
        self.metrics = dispatcher.metrics
        self.consumer = consumer or make_consumer(settings, notifier.consumer_group, "streamrec-notifier")
        self.error: str | None = None  # set when the loop stopped on a failure
        self.outage: str | None = None  # set while Redis or Kafka is unavailable and the loop waits it out
        self.outage_since: float | None = None

    def on_decode_error(self, record: ConsumerRecord, error: Exception) -> None:
        """Cannot deserialize: count it and log where it is; the rest of the batch goes on."""
        self.metrics.invalid.inc()
        log.error("not a notification %s: %s", _where(record), error)

    def run(self, stop: threading.Event) -> None:
        self.consumer.subscribe([self.settings.notifications_topic])
        log.info("notifier consuming %s as group %s", self.settings.notifications_topic, self.notifier.consumer_group)
        next_sweep = time.monotonic() + self.notifier.sweep_interval_s
        try:
            while not stop.is_set():
                polled = self.through_outages(lambda: self.consumer.poll(timeout_ms=200), stop, "polling")
                records = [r for batch in polled.values() for r in batch]
                if records:
                    self.through_outages(partial(self.handle_batch, records), stop,
                                         f"a batch of {len(records)} from {_where(records[0])}")
                if time.monotonic() >= next_sweep:
                    self.through_outages(self.sweep, stop, "the expiry sweep")
                    next_sweep = time.monotonic() + self.notifier.sweep_interval_s
        except _Stopped:
            log.info("notifier stopping during an outage; the uncommitted batch goes to the next owner")
        except Exception as error:
            # Not an outage (a bug, or Redis refusing a command): stop without committing.
            self.error = repr(error)
            log.critical("notifier loop stopped: %r", error)
            raise
        finally:
            self.consumer.close()
            self.dispatcher.close()

    def sweep(self) -> None:
        self.metrics.count_expired(*self.dispatcher.queue.sweep(wall_clock_ms()))

    def through_outages(self, action: Callable[[], T], stop: threading.Event, what: str) -> T:
        """`action()`, retried with bounded exponential backoff while Redis or Kafka is unavailable."""
        attempt = 0
        while True:
            try:
                result = action()
            except OUTAGES as error:
                attempt += 1
                delay = min(self.settings.outage_backoff_s * 2 ** (attempt - 1), self.settings.outage_backoff_max_s)
                if self.outage is None:
                    self.outage, self.outage_since = f"{type(error).__name__}: {error}", time.monotonic()
                    self.metrics.outage.set(1)
                    log.error("Redis or Kafka unavailable during %s: not committing, retrying with backoff up to "
                              "%.1fs until it answers: %r", what, self.settings.outage_backoff_max_s, error)
                else:
                    log.debug("still unavailable (attempt %d): %r", attempt, error)
                self.metrics.outage_retries.inc()
                self.wait_paused(delay, stop)
                continue
            if attempt and self.outage is not None:
                log.warning("outage over after %.1fs and %d retries; resuming with %s",
                            time.monotonic() - (self.outage_since or 0.0), attempt, what)
                self.outage = self.outage_since = None
                self.metrics.outage.set(0)
            return result

    def wait_paused(self, delay_s: float, stop: threading.Event) -> None:
        """Wait `delay_s` with the partitions paused, still polling so this member stays in the group."""
        deadline = time.monotonic() + delay_s
        paused: set = set()
        try:
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                try:
                    newly = self.consumer.assignment() - paused
                    if newly:
                        self.consumer.pause(*newly)
                        paused |= newly
                    polled = self.consumer.poll(timeout_ms=max(1, int(min(left, 1.0) * 1000)))
                except KafkaError as error:  # the broker is the one down: keep waiting
                    log.debug("poll during an outage failed: %r", error)
                    stop.wait(min(left, 0.2))
                    continue
                for tp, batch in polled.items():  # assigned within that poll, before it could be paused
                    self.consumer.seek(tp, min(r.offset for r in batch))
        finally:
            if paused:
                self.consumer.resume(*(paused & self.consumer.assignment()))
        if stop.is_set():
            raise _Stopped

    def handle_batch(self, records: list[ConsumerRecord]) -> None:
        notifications: list[Notification] = []
        for record in records:
            try:
                notifications.append(decode_notification(record.value))
            except (ValidationError, ValueError, TypeError) as error:
                self.on_decode_error(record, error)
        self.dispatcher.dispatch_batch(notifications)
        try:
            self.consumer.commit(offsets_after(records), timeout_ms=self.settings.kafka_bootstrap_timeout_ms)
        except CommitFailedError as error:
            log.warning("commit failed after a rebalance; the new owner drops what was handled: %s", error)
