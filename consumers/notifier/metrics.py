"""The notifier's Prometheus metrics: every consumed notification ends in exactly one counted outcome."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "NotifierMetrics"]


class NotifierMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.consumed = Counter("streamrec_notifier_consumed", "Notifications read from Kafka", registry=r)
        self.queued = Counter("streamrec_notifier_queued", "Notifications queued for the user's clients", registry=r)
        self.suppressed = Counter(
            "streamrec_notifier_suppressed", "Notifications not pushed, by fatigue rule", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "streamrec_notifier_duplicates", "Redelivered notification ids dropped", registry=r
        )
        self.invalid = Counter("streamrec_notifier_invalid", "Records that are not notifications", registry=r)
        self.delivered = Counter(
            "streamrec_notifier_sse_delivered", "Notifications written to a connected SSE client", registry=r
        )
        self.expired = Counter(
            "streamrec_notifier_expired",
            "Queued notifications removed before any client received them",
            ["reason"],
            registry=r,
        )
        self.webhook = Counter(
            "streamrec_notifier_webhook_deliveries", "Webhook deliveries by outcome", ["outcome"], registry=r
        )
        self.webhook_attempts = Counter(
            "streamrec_notifier_webhook_attempts", "Webhook HTTP attempts, retries included", registry=r
        )
        self.outage = Gauge(
            "streamrec_notifier_outage", "1 while the Kafka loop waits out a Redis or Kafka outage", registry=r
        )
        self.outage_retries = Counter(
            "streamrec_notifier_outage_retries", "Retries of a batch, poll or sweep during outages", registry=r
        )
        self.connected = Gauge("streamrec_notifier_sse_clients", "Open SSE streams", registry=r)
        self.auth_failures = Counter(
            "streamrec_notifier_auth_failures", "Stream requests refused, by reason", ["reason"], registry=r
        )

    def count_expired(self, by_age: int, by_overflow: int) -> None:
        if by_age:
            self.expired.labels("ttl").inc(by_age)
        if by_overflow:
            self.expired.labels("queue_full").inc(by_overflow)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (tests and the health endpoint read it)."""
        found = self.registry.get_sample_value(name, labels or None)
        return found or 0.0
