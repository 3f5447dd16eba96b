"""Factories for kafka-python producers and consumers with the settings every streamrec process shares."""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from streamrec.settings import Settings


def make_producer(settings: Settings, client_id: str, **overrides: object) -> KafkaProducer:
    """An acks=all producer; retries are safe because consumers are idempotent by event id."""
    options: dict[str, object] = {
        **settings.kafka_client_options(),
        "client_id": client_id,
        "acks": "all",
        "linger_ms": settings.producer_linger_ms,
        "retries": 5,
        "max_in_flight_requests_per_connection": 1,  # keep per-key order across retries
        "max_request_size": max(1_048_576, settings.dlq_max_original_bytes * 2 + 65_536),
    }
    options.update(overrides)
    return KafkaProducer(**options)


def make_consumer(settings: Settings, group_id: str | None, client_id: str, **overrides: object) -> KafkaConsumer:
    """A manual-commit consumer: offsets are committed only after a batch's side effects are done."""
    options: dict[str, object] = {
        **settings.kafka_client_options(),
        "client_id": client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "max_poll_records": settings.max_poll_records,
        "max_partition_fetch_bytes": max(1_048_576, settings.max_event_bytes * 16),
    }
    options.update(overrides)
    return KafkaConsumer(**options)


def offsets_after(records: Iterable[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once `records` are fully handled: one past the highest offset per partition."""
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        if tp not in offsets or offsets[tp].offset <= record.offset:
            offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
    return offsets
