"""Where a replay's notifications go: a JSONL file (always) and, on request, the replay's own Kafka topic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from consumers.replay.records import ReplayRecord
from streamrec.notifications import encode_notification
from streamrec.settings import Settings


class ReplaySink(Protocol):
    def write(self, records: Sequence[ReplayRecord]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One JSON `ReplayRecord` per line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._out: IO[str] = path.open("w")
        self.count = 0

    def write(self, records: Sequence[ReplayRecord]) -> None:
        for record in records:
            self._out.write(record.model_dump_json() + "\n")
        self.count += len(records)

    def close(self) -> None:
        self._out.close()


class TopicSink:
    """Publishes the notifications to `settings.notifications_topic` (a replay's isolated settings)."""

    def __init__(self, settings: Settings) -> None:
        from streamrec.kafka_clients import make_producer
        from streamrec.topics import TopicSpec, ensure_topics

        self.topic = settings.notifications_topic
        ensure_topics(settings, [TopicSpec(self.topic, 1, settings.replication_factor, {})])
        self._producer = make_producer(settings, "streamrec-replay")
        self.count = 0

    def write(self, records: Sequence[ReplayRecord]) -> None:
        for record in records:
            n = record.notification
            self._producer.send(self.topic, key=n.user_id.encode(), value=encode_notification(n))
        self.count += len(records)

    def close(self) -> None:
        self._producer.flush(timeout=30)
        self._producer.close(timeout=10)
