"""A stand-in for the collector's Kafka sink: keeps delivered events, or fails like a broker that is down."""

from __future__ import annotations

from producers.collector.kafka_sink import BrokerUnavailable


class FakeSink:
    def __init__(self) -> None:
        self.events: list = []
        self.down = False
        self.last_error: str | None = None

    def deliver(self, events) -> None:
        if self.down:
            self.last_error = "broker down"
            raise BrokerUnavailable("no broker")
        self.last_error = None
        self.events.extend(events)

    def close(self) -> None:
        pass
