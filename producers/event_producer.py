"""`EventProducer`: the Python SDK to emit events into Kafka (batched, with delivery callbacks).

A broker outage does not drop events: an event whose send or delivery failed is kept (up to
`redelivery_buffer` of them) and re-sent, in order, on a rebuilt producer once the broker answers again.
Re-sent copies are harmless because the worker drops event ids it has already processed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from kafka import KafkaProducer
from kafka.errors import KafkaError

from streamrec.events import Event, check_event_time, encode_event, event_key
from streamrec.kafka_clients import abandon_producer, make_producer
from streamrec.settings import Settings

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[Event, Exception | None], None]

_RESEND_CHUNK = 1000  # backlog events taken per lock acquisition while re-sending


class BrokerUnavailable(RuntimeError):
    """No Kafka broker answered at the configured bootstrap servers, or events could not be delivered."""


class EventProducer:
    """Emit events keyed by user id; `flush` waits for the broker's acknowledgement of all of them.

    Use as a context manager so pending events are flushed on close:

        with EventProducer(settings) as producer:
            producer.emit(PageView(user_id="u1", session_id="s1", item_id="p9"))

    `on_delivery(event, None)` is called for each acknowledged event; `on_delivery(event, error)` only for an
    event given up for good (the redelivery buffer was full). Failed deliveries are retried, not reported.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str | None = None,
        client_id: str = "streamrec-sdk",
        on_delivery: DeliveryCallback | None = None,
        redelivery_buffer: int = 100_000,
        **producer_options: object,
    ) -> None:
        self.settings = settings
        self.topic = topic or settings.events_topic
        self.client_id = client_id
        self.on_delivery = on_delivery
        self.emitted = 0  # accepted by emit (event-time policy passed)
        self.delivered = 0  # acknowledged by the broker (a re-sent event counts once per acknowledgement)
        self.failed = 0  # send or delivery failures seen (each one re-queued the event, or lost it)
        self.resent = 0  # sends of kept events on a rebuilt producer
        self.lost = 0  # given up for good: the redelivery buffer was full
        self._max_future_skew_ms = int(settings.event_max_future_skew_s * 1000)
        self._min_ts_ms = settings.event_min_ts_ms
        self._producer_options = producer_options
        self._backlog: deque[tuple[Event, int]] = deque()
        self._backlog_cap = redelivery_buffer
        self._broken = False  # a failure was seen: new events queue behind the backlog until it is re-sent
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._producer: KafkaProducer | None = self._connect()
        self._redelivery = threading.Thread(target=self._redeliver, name=f"{client_id}-redelivery", daemon=True)
        self._redelivery.start()

    def _connect(self) -> KafkaProducer:
        try:
            return make_producer(self.settings, self.client_id, **self._producer_options)
        except KafkaError as error:
            raise BrokerUnavailable(
                f"no Kafka broker answers at {self.settings.kafka_bootstrap}: start the local stack with "
                "`streamrec dev up` or set STREAMREC_KAFKA_BOOTSTRAP"
            ) from error

    def emit(self, event: Event, timestamp_ms: int | None = None) -> None:
        """Queue one event (non-blocking); the record timestamp is the event time unless given.

        Raises `EventDecodeError` (a ValueError), before anything is sent, for an event time too far ahead of
        this machine's clock or before the earliest accepted time. Delivery outcomes: `flush` and `on_delivery`.
        """
        check_event_time(event, int(time.time() * 1000), self._max_future_skew_ms, self._min_ts_ms)
        ts_ms = timestamp_ms if timestamp_ms is not None else event.ts_ms
        with self._lock:
            self.emitted += 1
            producer = self._producer
            direct = producer is not None and not self._broken and not self._backlog
            # During an outage new events queue behind the backlog, so one user's events keep their order.
            kept = direct or self._keep(event, ts_ms)
        if direct:
            self._send(producer, event, ts_ms)
        elif not kept:
            self._report_lost(event, None)

    def emit_many(self, events: Iterable[Event]) -> int:
        count = 0
        for event in events:
            self.emit(event)
            count += 1
        return count

    def _send(self, producer: KafkaProducer, event: Event, ts_ms: int) -> None:
        try:
            future = producer.send(self.topic, key=event_key(event), value=encode_event(event), timestamp_ms=ts_ms)
        except KafkaError as error:  # closed, fatal state, or no metadata within max_block_ms
            self._failed(event, ts_ms, error)
            return
        future.add_callback(self._delivered, event)
        future.add_errback(self._failed, event, ts_ms)

    def _keep(self, event: Event, ts_ms: int) -> bool:
        """Queue an event for redelivery (caller holds the lock); False when the buffer is full and it is lost."""
        if len(self._backlog) < self._backlog_cap:
            self._backlog.append((event, ts_ms))
            return True
        self.lost += 1
        self._settled.notify_all()
        return False

    def _delivered(self, event: Event, _metadata: object) -> None:
        with self._lock:
            self.delivered += 1
            if self.delivered + self.lost >= self.emitted:
                self._settled.notify_all()
        if self.on_delivery:
            self.on_delivery(event, None)

    def _failed(self, event: Event, ts_ms: int, error: Exception) -> None:
        # Runs on the caller's thread (send raised) or kafka-python's I/O thread (errback): never touch the
        # producer here, the redelivery thread rebuilds it.
        with self._lock:
            self.failed += 1
            first = not self._broken
            self._broken = True
            kept = self._keep(event, ts_ms)
        self._wake.set()
        if first:
            log.warning("delivery to %s failed (%r): keeping events to re-send on a new producer", self.topic, error)
        if not kept:
            self._report_lost(event, error)

    def _report_lost(self, event: Event, error: Exception | None) -> None:
        if self.lost == 1 or self.lost % 10_000 == 0:
            log.error(
                "redelivery buffer full (%d events): %d events lost so far, e.g. %s",
                self._backlog_cap,
                self.lost,
                event.event_id,
            )
        if self.on_delivery:
            self.on_delivery(event, error or BrokerUnavailable("redelivery buffer full"))

    def _redeliver(self) -> None:
        """Background thread: after a failure, rebuild the producer (with backoff) and re-send the backlog."""
        delay = self.settings.outage_backoff_s
        while True:
            self._wake.wait()
            if self._closing.wait(delay):
                return
            delivered_before = self.delivered
            if self._rebuild_and_resend():
                delay = self.settings.outage_backoff_s
            elif self.delivered > delivered_before:
                delay = self.settings.outage_backoff_s  # the broker answered meanwhile: not a long outage
            else:
                delay = min(delay * 2, self.settings.outage_backoff_max_s)

    def _rebuild_and_resend(self) -> bool:
        """One recovery attempt; True once the backlog is handed to a healthy-looking producer."""
        with self._lock:
            old, self._producer = self._producer, None
        if old is not None:
            abandon_producer(old)  # its pending records fail over into the backlog
        try:
            producer = make_producer(self.settings, self.client_id, **self._producer_options)
        except KafkaError as error:
            log.warning("broker still unavailable (%r); %d events kept", error, len(self._backlog))
            return False
        with self._lock:
            failures_before = self.failed
            self._producer = producer
        while True:
            with self._lock:
                if self.failed != failures_before:
                    return False  # the new producer fails too: back off, rebuild again
                if not self._backlog:
                    self._broken = False
                    self._wake.clear()
                    log.info("producer rebuilt; %d events re-sent so far", self.resent)
                    return True
                chunk = [self._backlog.popleft() for _ in range(min(_RESEND_CHUNK, len(self._backlog)))]
                self.resent += len(chunk)
            for event, ts_ms in chunk:
                self._send(producer, event, ts_ms)

    @property
    def undelivered(self) -> int:
        """Events emitted and not acknowledged: lost ones plus those still in flight or kept for redelivery."""
        with self._lock:
            return max(0, self.emitted - self.delivered)

    def flush(self, timeout: float | None = 30.0) -> None:
        """Block until every emitted event is acknowledged; raise BrokerUnavailable naming how many are not."""
        deadline = None if timeout is None else time.monotonic() + timeout
        producer = self._producer
        if producer is not None:
            with contextlib.suppress(KafkaError):  # failed records went to the backlog: wait for them below
                producer.flush(timeout=timeout)
        with self._settled:
            while self.delivered + self.lost < self.emitted:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._settled.wait(remaining if remaining is None else min(remaining, 0.5))
            pending = max(0, self.emitted - self.delivered - self.lost)
            lost = self.lost
        if pending or lost:
            raise BrokerUnavailable(
                f"{pending + lost} events not delivered: {pending} still pending after {timeout} s "
                f"({len(self._backlog)} kept for redelivery), {lost} lost (redelivery buffer full)"
            )

    def close(self, timeout: float = 30.0) -> None:
        try:
            self.flush(timeout)
        finally:
            self._closing.set()
            self._wake.set()
            self._redelivery.join(timeout)
            producer, self._producer = self._producer, None
            if producer is not None:
                abandon_producer(producer)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
