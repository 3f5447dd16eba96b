"""`streamrec watch`: print notifications as they arrive, with latency from the triggering event."""

from __future__ import annotations

import time
import uuid

import typer

from streamrec.events import utc_now
from streamrec.kafka_clients import make_consumer
from streamrec.notifications import decode_notification
from streamrec.settings import Settings


def print_notifications(settings: Settings, count: int | None = None, duration_s: float | None = None) -> int:
    """Tail the notifications topic (only notifications created after start); returns how many were shown."""
    started_at = utc_now()
    consumer = make_consumer(settings, f"streamrec-watch-{uuid.uuid4().hex[:8]}", "streamrec-watch",
                             auto_offset_reset="latest")
    consumer.subscribe([settings.notifications_topic])
    shown = 0
    deadline = time.monotonic() + duration_s if duration_s else None
    latencies: list[float] = []
    try:
        while (count is None or shown < count) and (deadline is None or time.monotonic() < deadline):
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    notification = decode_notification(record.value)
                    if notification.created_at < started_at:
                        continue  # filter by time, not by the broker's "latest" position
                    latency = (utc_now() - notification.trigger_ts).total_seconds() * 1000
                    latencies.append(latency)
                    items = ", ".join(f"{i.item_id}({i.score:.2f})" for i in notification.items[:5])
                    typer.echo(
                        f"{notification.user_id:<14} {notification.trigger_event_type:<15} {latency:7.1f} ms  "
                        f"{notification.model_name}: {items}"
                    )
                    shown += 1
    finally:
        consumer.close()
    if latencies:
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
        typer.echo(f"{shown} notifications; latency p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, p99 {p(0.99):.1f} ms")
    return shown
