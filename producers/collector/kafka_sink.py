"""`KafkaSink`: hand a request's events to Kafka and wait for the broker's acknowledgement of every one.

The producer is created lazily, and dropped after any failed start or failed delivery (a broker restart can
leave a kafka-python producer unable to send for good), so the collector comes up (and answers 503) while the
broker is down, and recovers by itself on a fresh producer when it returns. `last_error` is set from the first
failure until a delivery succeeds again: /healthz reports it. After a failure the sink fails fast for
`hold_off_s` (the Retry-After the clients get): during an outage requests are answered at once instead of each
holding a server thread for the whole produce timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from streamrec.events import Event, encode_event, event_key
from streamrec.kafka_clients import abandon_producer, make_producer
from streamrec.settings import Settings

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """Kafka did not acknowledge the events in time: the client should retry after a while."""


class KafkaSink:
    """Thread-safe: request handlers call `deliver` from the server's thread pool."""

    def __init__(
        self, settings: Settings, timeout_s: float, hold_off_s: float = 0.0, client_id: str = "streamrec-collector"
    ) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.hold_off_s = hold_off_s
        self._failed_until = 0.0
        self.client_id = client_id
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def _get_producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None and time.monotonic() < self._failed_until:
                # Requests that queued on the lock behind a failed connection attempt need not repeat it.
                raise BrokerUnavailable(f"broker unavailable moments ago ({self.last_error}); not retried yet")
            if self._producer is None:
                timeout_ms = int(self.timeout_s * 1000)
                try:
                    self._producer = make_producer(
                        self.settings,
                        self.client_id,
                        # Never block a request longer than the collector is willing to wait.
                        max_block_ms=timeout_ms,
                        bootstrap_timeout_ms=min(timeout_ms, self.settings.kafka_bootstrap_timeout_ms),
                    )
                except KafkaError as error:
                    self.last_error = f"cannot connect: {error}"
                    raise BrokerUnavailable(self.last_error) from error
            return self._producer

    def deliver(self, events: Sequence[Event]) -> None:
        """Send the events and return once the broker acknowledged all of them; else raise BrokerUnavailable.

        A partial failure is a failure: the client retries the whole request, and the event ids make the
        copies that did arrive harmless (the worker drops events it has already processed).
        """
        if time.monotonic() < self._failed_until:
            raise BrokerUnavailable(f"broker unavailable moments ago ({self.last_error}); not retried yet")
        try:
            self._send_and_wait(events)
        except BrokerUnavailable:
            self._failed_until = time.monotonic() + self.hold_off_s
            raise
        self.last_error = None

    def _send_and_wait(self, events: Sequence[Event]) -> None:
        producer = self._get_producer()
        deadline = time.monotonic() + self.timeout_s
        try:
            futures = [
                producer.send(self.settings.events_topic, key=event_key(e), value=encode_event(e), timestamp_ms=e.ts_ms)
                for e in events
            ]
            for future in futures:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
        except KafkaError as error:
            self.last_error = repr(error)
            log.warning("events not acknowledged by the broker: %r; the next request builds a new producer", error)
            self._drop_producer(producer)
            raise BrokerUnavailable(self.last_error) from error

    def _drop_producer(self, producer: KafkaProducer) -> None:
        """Forget a producer that failed a delivery, unless another request already replaced it."""
        with self._lock:
            if self._producer is not producer:
                return
            self._producer = None
        # Other requests' records on it fail at once (503, the client retries) instead of waiting out the timeout.
        abandon_producer(producer)

    @property
    def healthy(self) -> bool:
        return self.last_error is None

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=5)
            except KafkaError:  # records still pending after 5 s: their requests were answered 503 already
                abandon_producer(producer)
