"""The broker's floor for the benchmark: a relay that forwards records with no work, through the same loop shape.

It consumes like the worker (same client settings, poll/produce/flush/commit per batch, the commit sent the way
the worker sends it: `commit_mode`) and produces each record unchanged to another topic, so `bench` can measure
two broker hops without any processing.
Run as `python -m measurement.benchmarks.benchmark_relay SOURCE DESTINATION GROUP` with the STREAMREC_* environment.
"""

from __future__ import annotations

import signal
import sys
import threading

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from streamrec.kafka_clients import make_consumer, make_producer, offsets_after
from streamrec.settings import Settings


def relay(settings: Settings, source: str, destination: str, group: str, stop: threading.Event) -> int:
    """Forward records from `source` to `destination` until `stop`; returns how many were forwarded."""
    consumer = make_consumer(settings, group, "streamrec-bench-relay")
    producer = make_producer(settings, "streamrec-bench-relay")
    consumer.subscribe([source])
    forwarded = 0
    last: dict[TopicPartition, OffsetAndMetadata] = {}  # async mode: what close commits synchronously
    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=100, max_records=settings.max_poll_records)
            if not polled:
                continue
            batch = [record for records in polled.values() for record in records]
            for record in batch:
                producer.send(destination, key=record.key, value=record.value)
            forwarded += len(batch)
            offsets = offsets_after(batch)  # as the worker computes its commit
            producer.flush()
            if settings.commit_mode == "async":
                consumer.commit_async(offsets)
                last.update(offsets)
            else:
                consumer.commit(offsets)
    finally:
        if last:
            consumer.commit(last)  # as the worker does at close
        consumer.close()
        producer.close()
    return forwarded


def main() -> None:
    source, destination, group = sys.argv[1:4]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    relay(Settings(), source, destination, group, stop)


if __name__ == "__main__":
    main()
