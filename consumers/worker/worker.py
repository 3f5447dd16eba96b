"""The recommendation worker: consume events, update session context, publish notifications, then commit.

Batch loop, in this order on purpose (at-least-once + idempotent writes = effectively once):
  1. poll a batch; records that cannot be decoded, or whose event time breaks the policy (far future,
     before `event_min_ts_ms`), are dead-lettered (named failure path);
  2. run the recommendation pipeline (Redis writes, triggers, recommend), retrying, then dead-lettering
     single events that keep failing;
  3. produce notifications and dead letters and flush;
  4. record the notifications in Redis (cooldowns, redelivery dedupe), then commit the batch's offsets
     (sent without waiting for the answer by default, synchronously on revocation and close:
     consumers/worker/offset_commits.py).

Outages are waited out, never exited on. When Redis stalls or restarts (steps 2 and 4), the broker cannot
take a produce (3), a commit or a poll, the worker logs one line, clears `ready`, pauses its partitions and
retries the step with bounded exponential backoff (`outage_backoff_s` .. `outage_backoff_max_s`), polling
with timeout 0 in between so it stays in the group; it logs one line at recovery and resumes. Nothing is
committed meanwhile, and records of partitions revoked meanwhile are never committed by this worker.

A failed produce or flush closes the producer and builds a new one (`producer_factory`): kafka-python
producers can stay in a fatal state after a broker restart. The batch's notifications and dead letters are
then produced again, so the notifications topic may hold a notification twice (some went out before the
failure); notification ids are stable (derived from the trigger event) and the notifier drops ids it has
seen, so a user is notified once. Without a factory a produce failure stops the worker (`ProduceFailed`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError

from consumers.worker.dead_letter import DeadLetter, DeadLetterPublisher
from consumers.worker.event_decoding import decode_event
from consumers.worker.offset_commits import AsyncOffsetCommits
from consumers.worker.recommendation_pipeline import RecommendationPipeline
from consumers.worker.state_recovery import StateRecovery
from streamrec.events import Event, EventDecodeError
from streamrec.kafka_clients import abandon_producer, offsets_after
from streamrec.notifications import Notification, encode_notification
from streamrec.redis_connection import OUTAGE_ERRORS
from streamrec.settings import Settings

log = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS = OUTAGE_ERRORS  # Redis not answering, or a cluster that cannot serve a slot now
T = TypeVar("T")


class ProduceFailed(RuntimeError):
    """A notification or dead letter could not be delivered and no producer factory was given: stop, no commit."""


class WorkerStopping(Exception):  # noqa: N818 - a signal, not an error
    """`stop` was set while waiting out an outage: leave the batch uncommitted (it is redelivered)."""


def _where(record: ConsumerRecord) -> str:
    return f'partition="{record.topic}[{record.partition}]" offset="{record.offset}"'


def _names(partitions: Sequence[TopicPartition] | set[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)


class _AssignmentLog(ConsumerRebalanceListener):
    """Logs partition moves, remembers revocations (not to commit them) and marks the worker ready."""

    def __init__(self, worker: RecommendationWorker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Between batches nothing is half-done; during an outage the batch in hand loses these partitions.
        if revoked:
            log.info("partitions revoked: %s", _names(revoked))
            self.worker.revoked.update(revoked)
            # What earlier batches handled on them is committed before they move (still this member's now).
            self.worker.commits.commit_now(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", _names(assigned))
        if self.worker.outage is None:
            self.worker.ready.set()


class RecommendationWorker:
    def __init__(
        self,
        settings: Settings,
        pipeline: RecommendationPipeline,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        producer_factory: Callable[[], KafkaProducer] | None = None,
        state: StateRecovery | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.consumer = consumer
        self.producer: KafkaProducer | None = producer
        self.producer_factory = producer_factory
        self.state = state
        self.dead_letters = DeadLetterPublisher(producer, settings)
        self.batches = 0
        self._committed_sync = 0  # records committed by synchronous commits or transactions
        self.commits = AsyncOffsetCommits(consumer, settings.kafka_bootstrap_timeout_ms)
        self.producers_rebuilt = 0
        self.outages = 0
        self._letters: list[tuple[ConsumerRecord, DeadLetter]] = []  # dead letters of the batch in hand
        self.ready = threading.Event()  # set once the group has assigned partitions; cleared during outages
        self.heartbeat = time.monotonic()  # the loop's last sign of life (each poll, each retry in an outage)
        self.last_lag: int | None = None  # from the progress report (the loop's own broker call; never a scrape)
        self.last_partition_lag: dict[TopicPartition, int] = {}  # the same report, per owned partition
        self.outage: str | None = None  # what is down, while the worker waits for it
        self._ready_before_outage = False
        self.revoked: set[TopicPartition] = set()  # partitions revoked since the batch in hand was polled
        self._stop = threading.Event()
        self._listener = _AssignmentLog(self)

    @property
    def committed_records(self) -> int:
        """Records whose offsets the broker acknowledged."""
        return self._committed_sync + self.commits.acknowledged_records

    # --- the three failure paths -------------------------------------------------------------
    def on_decode_error(self, record: ConsumerRecord, error: EventDecodeError) -> None:
        """Cannot deserialize (or an event time the policy refuses): dead-letter with the reason and keep going."""
        self._letters.append((record, self.dead_letters.letter(record, error.reason, stage="decode")))

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
                reason = f"processing failed: {single_error!r}"
                self._letters.append((record, self.dead_letters.letter(record, reason, stage="process")))
        return notifications

    def on_produce_error(self, error: Exception) -> None:
        """Cannot produce: drop the producer (a new one is built for the retry), or stop when none can be built."""
        if self.producer_factory is None:
            log.critical("producing failed, stopping without commit: %s", error)
            raise ProduceFailed(str(error)) from error
        log.error("producing failed, rebuilding the producer and producing the batch again: %r", error)
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                producer.close(timeout=1)
            except Exception as close_error:  # noqa: BLE001 - a broken producer may not even close
                log.warning("closing the failed producer: %r", close_error)

    # --- the loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        self._stop = stop = stop or threading.Event()
        self.consumer.subscribe([self.settings.events_topic], listener=self._listener)
        log.info("worker consuming %s as group %s", self.settings.events_topic, self.settings.consumer_group)
        last_report, reported_events = time.monotonic(), 0
        try:
            while not stop.is_set():
                self.heartbeat = time.monotonic()
                with self.pipeline.stages.stage("poll"):
                    polled = self._until_done("the broker (poll)", (KafkaError,), lambda: self.consumer.poll(
                        timeout_ms=100, max_records=self.settings.max_poll_records))
                if polled:
                    self.handle_batch([r for records in polled.values() for r in records])
                elif self.outage is None:
                    self.commits.resend_if_idle()
                now = time.monotonic()
                if now - last_report >= 10:
                    self._report_progress(now - last_report, reported_events)
                    last_report, reported_events = now, self.pipeline.stats.events
        except WorkerStopping:
            log.info("stopping during an outage: the batch in hand is left uncommitted and will be redelivered")
        finally:
            self.close()

    def _report_progress(self, seconds: float, events_before: int) -> None:
        """The every-10-seconds log line (timed as a stage: its lag lookup asks the broker for end offsets)."""
        with self.pipeline.stages.stage("progress report (lag lookup)"):
            stats = self.pipeline.stats
            by_partition = self.partition_lag()
            self.last_partition_lag = by_partition or {}
            self.last_lag = None if by_partition is None else sum(by_partition.values())
            log.info(
                "events=%d (%.0f/s) triggers=%d notifications=%d dead_letters=%d duplicates=%d lag=%s",
                stats.events, (stats.events - events_before) / seconds, stats.triggers, stats.notifications,
                self.dead_letters.count, stats.duplicates, self.last_lag,
            )

    def lag(self) -> int | None:
        """Records on the owned partitions not yet polled (end offset minus position); None if unknown."""
        by_partition = self.partition_lag()
        return None if by_partition is None else sum(by_partition.values())

    def partition_lag(self) -> dict[TopicPartition, int] | None:
        """Per owned partition: end offset minus position ({} with none assigned); None if unknown."""
        assigned = sorted(self._assignment(), key=lambda tp: (tp.topic, tp.partition))
        if not assigned or self.outage is not None:
            return {} if not assigned else None
        try:  # short timeouts: a report must never hold the loop while the broker is away
            ends = self.consumer.end_offsets(assigned, timeout_ms=500)
            return {tp: max(0, ends[tp] - self.consumer.position(tp, timeout_ms=200)) for tp in assigned}
        except (KafkaError, AssertionError) as error:  # AssertionError: a partition moved in between
            log.debug("lag unknown: %r", error)
            return None

    def handle_batch(self, records: list[ConsumerRecord]) -> list[Notification]:
        events: list[Event] = []
        decoded: list[ConsumerRecord] = []
        self._letters = []
        self.revoked = set()  # revocations inside the poll that returned `records` precede them
        received_ms = int(time.time() * 1000)
        stage = self.pipeline.stages.stage
        with stage("decode"):
            for record in records:
                try:
                    event = decode_event(record.value, self.settings, received_ms)
                except EventDecodeError as error:
                    self.on_decode_error(record, error)
                    continue
                events.append(event)
                decoded.append(record)

        notifications = (
            self._redis_step(lambda: self._prepare_with_retries(decoded, events)) if events else []
        )
        if self.settings.delivery == "exactly-once":
            partition_of = {e.event_id: (r.topic, r.partition) for e, r in zip(events, decoded, strict=True)}
            sent = self._until_done("the broker (transaction)", (KafkaError,),
                                    lambda: self._commit_transaction(partition_of, notifications, records))
            # After the commit, never before: a batch redone after an abort must find its triggers unnotified.
            self._redis_step(lambda: self.pipeline.confirm(sent))
        else:
            with stage("produce and flush"):
                self._produce(notifications)
            self._redis_step(lambda: self.pipeline.confirm(notifications))
            with stage("commit"):
                self._until_done("the broker (commit)", (KafkaError,), lambda: self._commit(records))
        self._letters = []
        self.batches += 1
        return notifications

    def _redis_step(self, step: Callable[[], T]) -> T:
        """A step that writes Redis, retried through outages; every attempt first makes sure the store is whole
        (one EXISTS; a Redis that came back empty is rebuilt from the log, which reads Kafka, before the write)."""

        def attempt() -> T:
            if self.state is not None:
                self.state.ensure(self._stop)
            return step()

        return self._until_done("Redis", (*INFRASTRUCTURE_ERRORS, KafkaError), attempt)

    def _prepare_with_retries(self, records: list[ConsumerRecord], events: list[Event]) -> list[Notification]:
        letters_before = len(self._letters)
        attempts = self.settings.processing_retries + 1
        for attempt in range(attempts):
            try:
                return self.pipeline.prepare(events)
            except INFRASTRUCTURE_ERRORS:
                # Redis is down: healthy events are not dead-lettered; the whole batch is retried once it answers.
                del self._letters[letters_before:]
                raise
            except Exception as error:  # noqa: BLE001
                if attempt == attempts - 1:
                    try:
                        return self.on_processing_error(records, events, error)
                    except INFRASTRUCTURE_ERRORS:
                        del self._letters[letters_before:]
                        raise
                log.warning("processing attempt %d failed: %r", attempt + 1, error)
                time.sleep(0.05 * 2**attempt)
        return []

    def _produce(self, notifications: list[Notification]) -> None:
        """Produce the batch's dead letters and notifications and flush; after a failure, again on a new producer."""

        def produce_all() -> None:
            if self.producer is None:
                assert self.producer_factory is not None
                self.producer = self.producer_factory()
                self.dead_letters.producer = self.producer
                self.producers_rebuilt += 1
                log.info("new producer built")
            futures = [self.dead_letters.send(record, letter) for record, letter in self._letters]
            futures += [
                self.producer.send(
                    self.settings.notifications_topic, key=n.user_id.encode(), value=encode_notification(n)
                )
                for n in notifications
            ]
            self.producer.flush(timeout=30)
            for future in futures:
                future.get(timeout=0)  # raises the delivery error, if any

        def attempt() -> None:
            try:
                produce_all()
            except KafkaError as error:
                self.on_produce_error(error)
                raise

        if self.producer_factory is None:
            attempt()
        else:
            self._until_done("the broker (produce)", (KafkaError,), attempt)

    def _commit_transaction(
        self,
        partition_of: dict[str, tuple[str, int]],
        notifications: list[Notification],
        records: list[ConsumerRecord],
    ) -> list[Notification]:
        """Dead letters, notifications and the consumed offsets in one transaction; returns what it published.

        Only what belongs to partitions this worker still owns goes in: after a rebalance during a retry the
        new owner redoes the rest (its Redis writes are duplicates, and its triggers are not yet notified).
        An error aborts the transaction (or drops a fatal producer) and the caller retries the whole of it.
        """
        if self.producer is None:
            assert self.producer_factory is not None, "exactly-once needs a transactional producer factory"
            self.producer = self.producer_factory()
            self.dead_letters.producer = self.producer
            self.producers_rebuilt += 1
            log.info("new transactional producer built")
        producer = self.producer
        owned = [r for r in records if TopicPartition(r.topic, r.partition) not in self.revoked]
        owned_partitions = {(r.topic, r.partition) for r in owned}
        sent = [n for n in notifications if partition_of.get(n.trigger_event_id) in owned_partitions]
        try:
            producer.begin_transaction()
            for record, letter in self._letters:
                if (record.topic, record.partition) in owned_partitions:
                    self.dead_letters.send(record, letter)
            for n in sent:
                producer.send(self.settings.notifications_topic, key=n.user_id.encode(), value=encode_notification(n))
            if owned:
                producer.send_offsets_to_transaction(offsets_after(owned), self.consumer.group_metadata())
            producer.commit_transaction()
        except KafkaError as error:
            self._abort_transaction(producer, error)
            raise
        self._committed_sync += len(owned)
        return sent

    def _abort_transaction(self, producer: KafkaProducer, error: KafkaError) -> None:
        """Abort; a producer that cannot abort (fenced, fatal, broker gone) is dropped and rebuilt on retry."""
        log.error("transaction failed, aborting and redoing the batch: %r", error)
        try:
            producer.abort_transaction()
            return
        except Exception as abort_error:  # noqa: BLE001 - any failure here means: start from a new producer
            log.warning("abort failed (%r): building a new transactional producer", abort_error)
        self.producer = None
        try:
            abandon_producer(producer)
        except Exception as close_error:  # noqa: BLE001
            log.warning("closing the failed producer: %r", close_error)

    def _commit(self, records: list[ConsumerRecord]) -> None:
        # Partitions revoked while this batch was in hand belong to another member now: committing their
        # offsets could move the new owner's position, so they are left to its own commits.
        owned = [r for r in records if TopicPartition(r.topic, r.partition) not in self.revoked]
        if len(owned) < len(records):
            log.warning("not committing %d records of partitions revoked during the batch: %s",
                        len(records) - len(owned), _names(self.revoked))
        if not owned:
            return
        if self.settings.commit_mode == "async":
            self.commits.send(owned)
            return
        try:
            # Bounded: a commit to a coordinator that went away must fail (and be retried), not hang the loop.
            self.consumer.commit(offsets_after(owned), timeout_ms=self.settings.kafka_bootstrap_timeout_ms)
            self._committed_sync += len(owned)
        except CommitFailedError as error:
            # The group rebalanced under us: the new owner re-reads these records, and
            # event-id idempotency keeps its Redis writes and notifications single.
            log.warning("commit failed after a rebalance, records will be redelivered: %s", error)

    # --- outages -------------------------------------------------------------------------------
    def _until_done(self, what: str, errors: tuple[type[BaseException], ...], step: Callable[[], T]) -> T:
        """Run `step` until it does not raise `errors`: one log line when `what` goes away, one when it is back."""
        delay = self.settings.outage_backoff_s
        started: float | None = None
        failures = 0
        while True:
            try:
                result = step()
            except CommitFailedError:
                raise
            except errors as error:
                failures += 1
                if started is None:
                    started = time.monotonic()
                    self._begin_outage(what, error)
                else:
                    log.debug("%s still failing (attempt %d): %r", what, failures, error)
                self.heartbeat = time.monotonic()  # waiting out an outage is alive: a restart would not help
                self._wait(delay)
                delay = min(delay * 2, self.settings.outage_backoff_max_s)
                continue
            if started is not None:
                self._end_outage(what, time.monotonic() - started, failures)
            return result

    def _begin_outage(self, what: str, error: BaseException) -> None:
        self.outages += 1
        self.outage = what
        self._ready_before_outage = self.ready.is_set()
        self.ready.clear()
        log.error("OUTAGE: %s is failing (%r): pausing partitions, committing nothing, retrying with backoff "
                  "up to %.1fs", what, error, self.settings.outage_backoff_max_s)
        self._pause()

    def _end_outage(self, what: str, seconds: float, failures: int) -> None:
        self.outage = None
        try:
            self.consumer.resume(*self._assignment())
        except KafkaError as error:
            log.warning("resuming partitions: %r", error)
        log.warning("RECOVERED: %s answers again after %.1fs and %d failed attempts; resuming", what, seconds,
                    failures)
        if self._ready_before_outage or self._assignment():
            self.ready.set()

    def _assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment() or ())

    def _pause(self) -> None:
        try:
            self.consumer.pause(*self._assignment())
        except KafkaError as error:
            log.debug("pausing partitions: %r", error)

    def _wait(self, delay: float) -> None:
        """Sleep `delay` while staying in the group (poll with timeout 0 on paused partitions); honour stop."""
        deadline = time.monotonic() + delay
        while True:
            if self._stop.is_set():
                raise WorkerStopping
            self._poll_paused()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, 0.5))

    def _poll_paused(self) -> None:
        try:
            self._pause()  # partitions assigned during the outage start unpaused
            polled = self.consumer.poll(timeout_ms=0)
        except KafkaError as error:
            log.debug("poll during outage: %r", error)
            return
        for tp, records in (polled or {}).items():
            # Not ours to handle now: rewind so they are polled again after the outage.
            if records:
                self.consumer.seek(tp, records[0].offset)

    def close(self) -> None:
        """Flush what is in flight and leave the group (its partitions move at once); write where the batches'
        time went to `settings.stage_report`, if set (`streamrec bench pipeline` reads it)."""
        try:
            if self.producer is not None:
                self.producer.flush(timeout=10)
            self.commits.commit_now()  # every handled batch's offsets, before the group hands them on
        except KafkaError as error:
            log.warning("final flush failed: %r", error)
        finally:
            self.consumer.close()
            if self.producer is not None:
                self.producer.close(timeout=5)
            if self.settings.stage_report is not None:  # after the last flush: the report is whole when it appears
                served = self.pipeline.source.served.name  # not `current()`: no reload check while stopping
                self.pipeline.stages.write(self.settings.stage_report, self.pipeline.stats.events, served)
