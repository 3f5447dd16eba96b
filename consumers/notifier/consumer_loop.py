"""The notifier's Kafka loop: poll `notifications`, dispatch, then commit (and sweep expired queues).

Offsets are committed only after Redis holds the batch's outcomes and its webhooks were attempted; a
redelivered batch is harmless because the dispatcher drops notification ids it has seen.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError
from pydantic import ValidationError

from consumers.notifier.dispatcher import NotificationDispatcher, wall_clock_ms
from consumers.notifier.fatigue import FatigueRules
from consumers.notifier.metrics import NotifierMetrics
from consumers.notifier.push_queue import PushQueue
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.webhook import WebhookSender
from streamrec.kafka_clients import make_consumer, offsets_after
from streamrec.notifications import Notification, decode_notification
from streamrec.settings import Settings

log = logging.getLogger(__name__)


def _where(record: ConsumerRecord) -> str:
    return f'partition="{record.topic}[{record.partition}]" offset="{record.offset}"'


def build_dispatcher(
    settings: Settings, notifier: NotifierSettings, metrics: NotifierMetrics
) -> NotificationDispatcher:
    client = settings.redis_client()
    client.ping()  # fail fast when Redis is not there
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
                polled = self.consumer.poll(timeout_ms=200)
                records = [r for batch in polled.values() for r in batch]
                if records:
                    self.handle_batch(records)
                if time.monotonic() >= next_sweep:
                    self.metrics.count_expired(*self.dispatcher.queue.sweep(wall_clock_ms()))
                    next_sweep = time.monotonic() + self.notifier.sweep_interval_s
        except Exception as error:
            # Redis or Kafka failing: stop without committing; the batch is redelivered to the group.
            self.error = repr(error)
            log.critical("notifier loop stopped: %r", error)
            raise
        finally:
            self.consumer.close()
            self.dispatcher.close()

    def handle_batch(self, records: list[ConsumerRecord]) -> None:
        notifications: list[Notification] = []
        for record in records:
            try:
                notifications.append(decode_notification(record.value))
            except (ValidationError, ValueError, TypeError) as error:
                self.on_decode_error(record, error)
        self.dispatcher.dispatch_batch(notifications)
        try:
            self.consumer.commit(offsets_after(records))
        except CommitFailedError as error:
            log.warning("commit failed after a rebalance; the new owner drops what was handled: %s", error)
