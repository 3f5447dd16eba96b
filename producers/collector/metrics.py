"""The collector's Prometheus metrics, on a registry of its own (several apps can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "CollectorMetrics"]


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "streamrec_collector_events_accepted",
            "Events acknowledged by Kafka and answered with 202",
            ["application", "type"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "streamrec_collector_requests_rejected",
            "Requests refused, by reason (the events in them were not accepted)",
            ["reason"],
            registry=self.registry,
        )
        self.produce_latency = Histogram(
            "streamrec_collector_produce_latency_seconds",
            "Time from handing a request's events to Kafka until the broker acknowledged all of them",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
