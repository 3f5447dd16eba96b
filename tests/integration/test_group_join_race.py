"""A fresh group member gets its partitions even when a short poll leaves its join in flight.

kafka-python 3.0.12 can drop the SyncGroup answer of a join that spans two polls (see
`streamrec.kafka_clients._finish_joins_in_flight`): the member then stays in the group owning nothing. Under CPU
contention (Python threads spinning beside the consumer, as in a busy worker or test process) that happened to
about one fresh group in fifteen; each of these members must get every partition.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from streamrec.kafka_clients import make_consumer
from streamrec.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_every_fresh_member_gets_its_partitions_under_cpu_contention(settings):
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinners = [threading.Thread(target=spin, daemon=True) for _ in range(3)]
    for thread in spinners:
        thread.start()
    empty: list[str] = []
    try:
        for _ in range(12):
            unique = uuid.uuid4().hex[:8]
            group = settings.model_copy(update={"events_topic": f"{settings.events_topic}-{unique}",
                                                "consumer_group": f"{settings.consumer_group}-{unique}"})
            ensure_topics(group)
            consumer = make_consumer(group, group.consumer_group, "join-race")
            try:
                consumer.subscribe([group.events_topic])
                deadline = time.monotonic() + 30
                while len(consumer.assignment()) < group.events_partitions and time.monotonic() < deadline:
                    consumer.poll(timeout_ms=100)  # the worker's short poll
                if len(consumer.assignment()) < group.events_partitions:
                    empty.append(group.consumer_group)
            finally:
                consumer.close()
    finally:
        stop.set()
    assert not empty, f"members left without their partitions after 30 s: {empty}"
