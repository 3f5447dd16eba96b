"""`EventProducer`: the Python SDK to emit events into Kafka (batched, with delivery callbacks)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata

from streamrec.events import Event, encode_event, event_key
from streamrec.kafka_clients import make_producer
from streamrec.settings import Settings

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[Event, Exception | None], None]


class BrokerUnavailable(RuntimeError):
    """No Kafka broker answered at the configured bootstrap servers."""


class EventProducer:
    """Emit events keyed by user id; `flush` waits for the broker's acknowledgement of all of them.

    Use as a context manager so pending events are flushed on close:

        with EventProducer(settings) as producer:
            producer.emit(PageView(user_id="u1", session_id="s1", item_id="p9"))
    """

    def __init__(
        self,
        settings: Settings,
        topic: str | None = None,
        client_id: str = "streamrec-sdk",
        on_delivery: DeliveryCallback | None = None,
        **producer_options: object,
    ) -> None:
        self.topic = topic or settings.events_topic
        self.on_delivery = on_delivery
        self.delivered = 0
        self.failed = 0
        self._lock = threading.Lock()
        try:
            self._producer = make_producer(settings, client_id, **producer_options)
        except KafkaTimeoutError as error:
            raise BrokerUnavailable(
                f"no Kafka broker answers at {settings.kafka_bootstrap}: start the local stack with "
                "`streamrec dev up` or set STREAMREC_KAFKA_BOOTSTRAP"
            ) from error

    def emit(self, event: Event, timestamp_ms: int | None = None) -> FutureRecordMetadata:
        """Queue one event (non-blocking); the record timestamp is the event time unless given."""
        future = self._producer.send(
            self.topic,
            key=event_key(event),
            value=encode_event(event),
            timestamp_ms=timestamp_ms if timestamp_ms is not None else event.ts_ms,
        )
        future.add_callback(self._delivered, event)
        future.add_errback(self._failed, event)
        return future

    def emit_many(self, events: Iterable[Event]) -> int:
        count = 0
        for event in events:
            self.emit(event)
            count += 1
        return count

    def _delivered(self, event: Event, _metadata: object) -> None:
        with self._lock:
            self.delivered += 1
        if self.on_delivery:
            self.on_delivery(event, None)

    def _failed(self, event: Event, error: Exception) -> None:
        with self._lock:
            self.failed += 1
        log.error("event %s (%s) not delivered: %s", event.event_id, event.type, error)
        if self.on_delivery:
            self.on_delivery(event, error)

    def flush(self, timeout: float | None = 30.0) -> None:
        """Block until every queued event is acknowledged; raise if some could not be delivered."""
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as error:
            raise BrokerUnavailable(f"flush did not complete: {error}") from error
        if self.failed:
            raise BrokerUnavailable(f"{self.failed} events were not delivered (see log)")

    def close(self, timeout: float = 30.0) -> None:
        try:
            self.flush(timeout)
        finally:
            self._producer.close(timeout=timeout)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
