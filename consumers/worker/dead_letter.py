"""Dead letters: a record that cannot be decoded or processed goes to the DLQ with the reason and its origin."""

from __future__ import annotations

import base64
import logging
from collections import defaultdict

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import FutureRecordMetadata
from pydantic import BaseModel

from streamrec.events import utc_now
from streamrec.settings import Settings

log = logging.getLogger(__name__)


class DeadLetter(BaseModel):
    """What the DLQ holds: enough to understand the failure and to re-drive the original record."""

    reason: str
    stage: str  # "decode" or "process"
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp_ms: int | None
    key: str | None
    original_b64: str  # the original bytes (truncated past `dlq_max_original_bytes`; see below)
    original_size: int
    original_truncated: bool  # when True, re-read the full value at source topic/partition/offset
    failed_at: str

    @classmethod
    def from_record(cls, record: ConsumerRecord, reason: str, stage: str, max_bytes: int) -> DeadLetter:
        value = record.value or b""
        return cls(
            reason=reason,
            stage=stage,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            source_timestamp_ms=record.timestamp,
            key=record.key.decode(errors="replace") if record.key else None,
            original_b64=base64.b64encode(value[:max_bytes]).decode(),
            original_size=len(value),
            original_truncated=len(value) > max_bytes,
            failed_at=utc_now().isoformat(),
        )

    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)


class DeadLetterPublisher:
    def __init__(self, producer: KafkaProducer, settings: Settings) -> None:
        self.producer = producer
        self.topic = settings.dlq_topic
        self.max_bytes = settings.dlq_max_original_bytes
        self.count = 0
        self.by_stage: dict[str, int] = defaultdict(int)  # "decode" / "process" -> letters

    def letter(self, record: ConsumerRecord, reason: str, stage: str) -> DeadLetter:
        """Log and count a dead letter once; `send` it (again, after a producer rebuild) with the batch."""
        log.warning(
            'dead-letter partition="%s[%d]" offset="%d" stage=%s reason=%s',
            record.topic, record.partition, record.offset, stage, reason[:300],
        )
        self.count += 1
        self.by_stage[stage] += 1
        return DeadLetter.from_record(record, reason, stage, self.max_bytes)

    def send(self, record: ConsumerRecord, letter: DeadLetter) -> FutureRecordMetadata:
        """Queue a dead letter; the worker flushes it with the batch before committing offsets."""
        return self.producer.send(self.topic, key=record.key, value=letter.model_dump_json().encode())

    def publish(self, record: ConsumerRecord, reason: str, stage: str) -> FutureRecordMetadata:
        return self.send(record, self.letter(record, reason, stage))
