"""Factories for kafka-python producers and consumers with the settings every streamrec process shares."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from streamrec.settings import Settings

log = logging.getLogger(__name__)


def make_producer(settings: Settings, client_id: str, **overrides: object) -> KafkaProducer:
    """An acks=all producer; retries are safe because consumers are idempotent by event id."""
    options: dict[str, object] = {
        **settings.kafka_client_options(),
        "client_id": client_id,
        "acks": "all",
        "linger_ms": settings.producer_linger_ms,
        "retries": 5,
        "max_in_flight_requests_per_connection": 1,  # keep per-key order across retries
        # kafka-python 3 makes producers idempotent by default. We turn that off: acks=all with one request in
        # flight already keeps per-partition order across retries, and a retry's duplicate is dropped by the
        # worker (event ids), so idempotence buys us nothing. What it costs: a producer id from InitProducerId;
        # when the broker loses it (a restart), kafka-python 3.0.12 goes fatal (InitProducerId -> UnknownError)
        # and every later send fails until the process rebuilds the client. Throughput is the same either way
        # (30k events to a local Tansu: 20-23k/s without, 23-24k/s with, within run-to-run noise).
        "enable_idempotence": False,
        # Topics come from streamrec.topics.ensure_topics, never by accident. Safe for producers: a send to a
        # missing topic waits (up to max_block_ms) for metadata and goes out once ensure_topics created it.
        "allow_auto_create_topics": False,
        "max_request_size": max(1_048_576, settings.dlq_max_original_bytes * 2 + 65_536),
    }
    options.update(overrides)
    producer = KafkaProducer(**options)
    _honour_auto_create_option(producer._metadata, options["allow_auto_create_topics"])
    return producer


def default_transactional_id(settings: Settings, client_id: str) -> str:
    """The configured id, else one per process: unique, so two workers on one host never fence each other."""
    return settings.transactional_id or f"{settings.consumer_group}-{client_id}-{socket.gethostname()}-{os.getpid()}"


def make_transactional_producer(settings: Settings, client_id: str, **overrides: object) -> KafkaProducer:
    """A producer whose sends and consumed offsets commit together (`init_transactions` already done).

    Transactions need idempotence (producer ids); a producer that lost its id after a broker restart goes
    fatal, and the worker builds a new one with this factory.
    """
    producer = make_producer(
        settings,
        client_id,
        transactional_id=default_transactional_id(settings, client_id),
        enable_idempotence=True,
        transaction_timeout_ms=settings.transaction_timeout_ms,
        **overrides,
    )
    try:
        producer.init_transactions()
    except KafkaError:
        abandon_producer(producer)
        raise
    return producer


def _honour_auto_create_option(cluster: object, allow: object) -> None:
    """Make kafka-python 3.0.12 honour `allow_auto_create_topics`: it accepts the option but never hands it to
    the ClusterMetadata that builds metadata requests (kafka/net/manager.py), so every request asks the broker
    to auto-create the topics it names. Tansu does, and after a restart that would recreate our topics with its
    default partition count before `ensure_topics` runs."""
    config = getattr(cluster, "config", None)
    if isinstance(config, dict) and "allow_auto_create_topics" in config:
        config["allow_auto_create_topics"] = bool(allow)


def _finish_joins_in_flight(coordinator: object) -> None:
    """Make kafka-python 3.0.12 finish a group join that a short poll left in flight.

    `join_group_async` loops `while need_rejoin()` and, when a poll's timeout expires mid-join, leaves the join
    task running for the next poll to await. But the task itself updates the snapshots `need_rejoin` compares
    (the leader's `_assignment_snapshot`), so on the next poll `need_rejoin()` can be False: the loop is skipped,
    the SyncGroup answer (the partitions) is never applied, and the member stays in the group owning nothing,
    for good. Seen here as a worker or notifier that joined with no partitions under CPU contention (about 1 in
    15 fresh groups while three Python threads spin). With a join task present, a rejoin is still needed: the
    loop runs, and a join that finished unread is simply joined again.
    """
    original = getattr(coordinator, "need_rejoin", None)
    if original is None or not hasattr(coordinator, "_join_task"):
        return  # another kafka-python: nothing to mend

    def need_rejoin() -> bool:
        return original() or getattr(coordinator, "_join_task", None) is not None

    coordinator.need_rejoin = need_rejoin


def abandon_producer(producer: KafkaProducer, join_s: float = 5.0) -> None:
    """Close `producer` without waiting for the broker: its unfinished records fail (their errbacks run) now.

    `KafkaProducer.close(timeout=0)` in kafka-python 3.0.12 first calls `flush(0)`, which raises
    KafkaTimeoutError while records are pending, and never reaches its force-close; so force the I/O thread
    closed ourselves, wait for it to fail the pending records, then close what is left.
    """
    try:
        producer.close(timeout=0)
        return
    except KafkaError:
        pass
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(join_s)
    try:
        producer.close(timeout=0)
    except KafkaError as error:
        log.warning("producer %s did not close cleanly: %r", producer, error)


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
        # A group member that subscribed a moment before its topic was listed by the broker (Apache Kafka lists a
        # new topic shortly after creating it) sees it at the next metadata refresh: 5 s, not the default 5 min.
        "metadata_max_age_ms": 5000,
        # With transactional workers, readers see a batch's notifications only once its transaction committed.
        "isolation_level": "read_committed" if settings.delivery == "exactly-once" else "read_uncommitted",
    }
    options.update(overrides)
    consumer = KafkaConsumer(**options)
    # Auto-creation stays at kafka-python's default (on) for consumers: with it off, a group consumer that
    # subscribed before its topic existed was never assigned it (not within 60 s of ensure_topics creating it,
    # on Tansu), while with it on Tansu creates the topic at once. Brokers with auto.create.topics.enable=false
    # (our Kafka dev stack, production) ignore the flag anyway. Callers may pass allow_auto_create_topics=False.
    _honour_auto_create_option(consumer._cluster, options.get("allow_auto_create_topics", True))
    if group_id is not None:
        _finish_joins_in_flight(consumer._coordinator)
    return consumer


def offsets_after(records: Iterable[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once `records` are fully handled: one past the highest offset per partition."""
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        if tp not in offsets or offsets[tp].offset <= record.offset:
            offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
    return offsets


def consumer_lag(settings: Settings, group_id: str, topic: str) -> dict[int, int]:
    """Per partition of `topic`: end offset minus the group's committed offset (all of it when none committed)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(client_id="streamrec-lag", **settings.kafka_client_options())
    consumer = make_consumer(settings, None, "streamrec-lag", allow_auto_create_topics=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return {}
        ends = consumer.end_offsets(tps)
        committed = admin.list_group_offsets({group_id: tps}).get(group_id, {})
        lag = {}
        for tp in tps:
            done = committed.get(tp)
            start = done.offset if done is not None and done.offset >= 0 else 0
            lag[tp.partition] = max(0, ends[tp] - start)
        return lag
    finally:
        consumer.close()
        admin.close()


def wait_for_partitions(consumer: KafkaConsumer, topic: str, timeout_s: float = 30.0) -> list[TopicPartition]:
    """The partitions of `topic` once the broker lists it (a just-created topic shows a moment later); [] if never."""
    deadline = time.monotonic() + timeout_s
    partitions = consumer.partitions_for_topic(topic)
    while not partitions and time.monotonic() < deadline:
        time.sleep(0.1)
        partitions = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


def assign_whole_topic(consumer: KafkaConsumer, topic: str, timeout_s: float = 30.0) -> list[TopicPartition]:
    """Assign every partition of `topic` to a group-less reader, from the beginning; [] if the topic never shows.

    Readers that only watch a topic (benchmarks, tests, tools) assign by hand: a group member that joins
    before the broker lists a just-created topic gets no partitions until its next metadata refresh.
    """
    assigned = wait_for_partitions(consumer, topic, timeout_s)
    if assigned:
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
    return assigned
