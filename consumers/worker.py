"""The recommendation worker: consume events, update session context, publish notifications, then commit.

Batch loop, in this order on purpose (at-least-once + idempotent writes = effectively once):
  1. poll a batch; records that cannot be decoded go to the dead-letter topic (named failure path);
  2. run the recommendation pipeline (Redis writes, triggers, recommend), retrying, then dead-lettering
     single events that keep failing;
  3. produce notifications and dead letters and flush: a produce failure stops the worker, nothing is
     committed, and the group hands the partitions to another member;
  4. record the notifications in Redis (cooldowns, redelivery dedupe), then commit the batch's offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import redis
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError

from consumers.dead_letter import DeadLetterPublisher
from consumers.recommendation_pipeline import RecommendationPipeline
from streamrec.events import Event, EventDecodeError, parse_event
from streamrec.kafka_clients import offsets_after
from streamrec.notifications import Notification, encode_notification
from streamrec.settings import Settings

log = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class ProduceFailed(RuntimeError):
    """A notification or dead letter could not be delivered: stop without committing."""


def _where(record: ConsumerRecord) -> str:
    return f'partition="{record.topic}[{record.partition}]" offset="{record.offset}"'


class _AssignmentLog(ConsumerRebalanceListener):
    """Logs partition moves and marks the worker ready once it owns partitions (readiness probes use it)."""

    def __init__(self, ready: threading.Event) -> None:
        self.ready = ready

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # The batch in hand was committed before this poll, so nothing is left half-done here.
        if revoked:
            log.info("partitions revoked: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
        self.ready.set()


class RecommendationWorker:
    def __init__(
        self,
        settings: Settings,
        pipeline: RecommendationPipeline,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.consumer = consumer
        self.producer = producer
        self.dead_letters = DeadLetterPublisher(producer, settings)
        self.batches = 0
        self.committed_records = 0
        self._in_flight: list = []  # dead-letter futures of the batch in hand
        self.ready = threading.Event()  # set once the group has assigned partitions

    # --- the three failure paths -------------------------------------------------------------
    def on_decode_error(self, record: ConsumerRecord, error: EventDecodeError) -> None:
        """Cannot deserialize: dead-letter with the reason and keep going."""
        self._in_flight.append(self.dead_letters.publish(record, error.reason, stage="decode"))

    def on_processing_error(self, records: Sequence[ConsumerRecord], events: Sequence[Event], error: Exception):
        """Cannot process after retries: isolate the failing events one by one and dead-letter them."""
        log.error("batch of %d failed after retries (%s); isolating events", len(events), error)
        notifications: list[Notification] = []
        for record, event in zip(records, events, strict=True):
            try:
                notifications += self.pipeline.prepare([event])
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as single_error:  # noqa: BLE001 - any bug in one event must not stop the stream
                log.exception("processing failed %s event_id=%s", _where(record), event.event_id)
                letter = self.dead_letters.publish(record, f"processing failed: {single_error!r}", stage="process")
                self._in_flight.append(letter)
        return notifications

    def on_produce_error(self, error: Exception) -> None:
        """Cannot produce: stop; uncommitted records are redelivered to the group."""
        log.critical("producing failed, stopping without commit: %s", error)
        raise ProduceFailed(str(error)) from error

    # --- the loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        self.consumer.subscribe([self.settings.events_topic], listener=_AssignmentLog(self.ready))
        log.info("worker consuming %s as group %s", self.settings.events_topic, self.settings.consumer_group)
        last_report, reported_events = time.monotonic(), 0
        try:
            while not stop.is_set():
                polled = self.consumer.poll(timeout_ms=100, max_records=self.settings.max_poll_records)
                if polled:
                    self.handle_batch([r for records in polled.values() for r in records])
                now = time.monotonic()
                if now - last_report >= 10:
                    stats = self.pipeline.stats
                    rate = (stats.events - reported_events) / (now - last_report)
                    log.info(
                        "events=%d (%.0f/s) triggers=%d notifications=%d dead_letters=%d duplicates=%d",
                        stats.events, rate, stats.triggers, stats.notifications,
                        self.dead_letters.count, stats.duplicates,
                    )
                    last_report, reported_events = now, stats.events
        finally:
            self.close()

    def handle_batch(self, records: list[ConsumerRecord]) -> list[Notification]:
        events: list[Event] = []
        decoded: list[ConsumerRecord] = []
        for record in records:
            try:
                events.append(parse_event(record.value, self.settings.max_event_bytes))
                decoded.append(record)
            except EventDecodeError as error:
                self.on_decode_error(record, error)

        notifications = self._prepare_with_retries(decoded, events) if events else []
        futures = self._in_flight + [
            self.producer.send(
                self.settings.notifications_topic,
                key=n.user_id.encode(),
                value=encode_notification(n),
            )
            for n in notifications
        ]
        try:
            self.producer.flush(timeout=30)
            for future in futures:
                future.get(timeout=0)  # raises the delivery error, if any
        except KafkaError as error:
            self.on_produce_error(error)
        finally:
            self._in_flight = []
        self.pipeline.confirm(notifications)
        self._commit(records)
        self.batches += 1
        return notifications

    def _prepare_with_retries(self, records: list[ConsumerRecord], events: list[Event]) -> list[Notification]:
        attempts = self.settings.processing_retries + 1
        for attempt in range(attempts):
            try:
                return self.pipeline.prepare(events)
            except INFRASTRUCTURE_ERRORS:
                raise  # Redis is down: do not dead-letter healthy events; stop and be restarted
            except Exception as error:  # noqa: BLE001
                if attempt == attempts - 1:
                    return self.on_processing_error(records, events, error)
                log.warning("processing attempt %d failed: %r", attempt + 1, error)
                time.sleep(0.05 * 2**attempt)
        return []

    def _commit(self, records: list[ConsumerRecord]) -> None:
        try:
            self.consumer.commit(offsets_after(records))
            self.committed_records += len(records)
        except CommitFailedError as error:
            # The group rebalanced under us: the new owner re-reads these records, and
            # event-id idempotency keeps its Redis writes and notifications single.
            log.warning("commit failed after a rebalance, records will be redelivered: %s", error)

    def close(self) -> None:
        """Flush what is in flight and leave the group (its partitions move at once)."""
        try:
            self.producer.flush(timeout=10)
        finally:
            self.consumer.close()
            self.producer.close(timeout=5)
