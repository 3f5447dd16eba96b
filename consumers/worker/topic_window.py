"""Read one topic from a point in time up to where it ended when reading began, batch by batch.

Brokers differ in what they answer: Apache Kafka gives exact `offsets_for_times` and `end_offsets`; Tansu
(the test broker) answers offset 0 for any time and, for `end_offsets`, one past the first offset of the
last record batch. So the reader trusts neither blindly:

- start: `offsets_for_times(since)` where it answers, else the beginning; records older than `since`
  (by record timestamp) are skipped either way, so a too-early start only costs reading time.
- end: the `end_offsets` captured at start. Once there, one short fetch past those ends: a broker that
  returns a record at or beyond the end it reports right after is wrong about its ends, and the reader
  goes on in "idle" mode: until no record has come for `idle_s`, or until every partition shows a record
  received after reading began (event time beyond start + the allowed clock skew: a busy topic ends too).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from streamrec.kafka_clients import wait_for_partitions

log = logging.getLogger(__name__)


@dataclass
class WindowStats:
    """How a topic window was read (which broker answers were trusted) and what was skipped."""

    topic: str
    partitions: int = 0
    start_mode: str = "offsets_for_times"  # or "beginning" where the broker gave no usable answer
    end_mode: str = "end_offsets"  # or "idle" once the captured end offsets proved wrong
    records: int = 0  # handed to the caller
    skipped_older: int = 0  # before `since` by record timestamp
    expected: int | None = None  # records between start and captured end offsets (when trusted)
    start_offsets: dict[int, int] = field(default_factory=dict)
    end_offsets: dict[int, int] = field(default_factory=dict)


class TopicWindowReader:
    """Yields batches of records of `topic` with timestamp >= `since_ms`, up to the end captured at start."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        topic: str,
        since_ms: int,
        fence_ms: int,
        batch_size: int = 500,
        idle_s: float = 2.0,
        stall_s: float = 15.0,
        probe_s: float = 0.5,
        metadata_timeout_s: float = 10.0,
    ) -> None:
        """`consumer` must have group_id=None (manual assignment, nothing committed); `fence_ms`: a record
        with a later timestamp was received after reading began (start time + allowed clock skew)."""
        self.consumer = consumer
        self.topic = topic
        self.since_ms = since_ms
        self.fence_ms = fence_ms
        self.batch_size = batch_size
        self.idle_s = idle_s
        self.stall_s = stall_s  # with trusted end offsets: give up when nothing comes for this long
        self.probe_s = probe_s  # how long to look for records past the captured ends
        self.metadata_timeout_s = metadata_timeout_s
        self.stats = WindowStats(topic)
        self._ends: dict[TopicPartition, int] | None = None
        self._done: set[TopicPartition] = set()

    # --- setup --------------------------------------------------------------------------------
    def _partitions(self) -> list[TopicPartition]:
        partitions = wait_for_partitions(self.consumer, self.topic, self.metadata_timeout_s)
        if not partitions:
            raise RuntimeError(f"topic {self.topic} not found (no partitions in the broker's metadata)")
        return partitions

    def _start_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        beginning = self.consumer.beginning_offsets(tps)
        try:
            found = self.consumer.offsets_for_times(dict.fromkeys(tps, self.since_ms))
        except (KafkaError, ValueError) as error:
            log.warning("%s: offsets_for_times failed (%r): scanning from the beginning", self.topic, error)
            found = {}
        starts: dict[TopicPartition, int] = {}
        for tp in tps:
            answer = found.get(tp)
            # Kafka answers None for a partition with nothing that recent; Tansu answers timestamp -1.
            # Both mean "no usable answer": scan from the beginning and skip by timestamp.
            if answer is None or answer.timestamp < 0 or answer.offset < beginning[tp]:
                starts[tp] = beginning[tp]
                self.stats.start_mode = "beginning"
            else:
                starts[tp] = answer.offset
        return starts

    def _end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int] | None:
        try:
            return dict(self.consumer.end_offsets(tps))
        except (KafkaError, ValueError) as error:
            log.warning("%s: end_offsets failed (%r): reading until the topic is idle", self.topic, error)
            return None

    # --- reading ------------------------------------------------------------------------------
    def batches(self) -> Iterator[list[ConsumerRecord]]:
        tps = self._partitions()
        self.stats.partitions = len(tps)
        self.consumer.assign(tps)
        starts = self._start_offsets(tps)
        self._ends = self._end_offsets(tps)
        for tp in tps:
            self.consumer.seek(tp, starts[tp])
        self.stats.start_offsets = {tp.partition: o for tp, o in starts.items()}
        if self._ends is not None:
            self.stats.end_offsets = {tp.partition: o for tp, o in self._ends.items()}
            self.stats.expected = sum(max(0, self._ends[tp] - starts[tp]) for tp in tps)
            for tp in tps:
                if starts[tp] >= self._ends[tp]:
                    self._finish(tp)
        yield from self._read(tps)
        if self._ends is not None and not self._ends_hold(tps):
            yield from self._read(tps)  # now in idle mode, from the (wrong) ends onwards

    def _read(self, tps: list[TopicPartition]) -> Iterator[list[ConsumerRecord]]:
        last_record = time.monotonic()
        while len(self._done) < len(tps):
            polled = self.consumer.poll(timeout_ms=200, max_records=self.batch_size)
            batch: list[ConsumerRecord] = []
            for tp, records in polled.items():
                batch.extend(self._accept(tp, records))
            if self._ends is not None:
                # Offsets without a record (transaction markers, compaction) never show up as records.
                for tp in tps:
                    if tp not in self._done and self.consumer.position(tp) >= self._ends[tp]:
                        self._finish(tp)
            if polled:
                last_record = time.monotonic()
            elif time.monotonic() - last_record >= (self.idle_s if self._ends is None else self.stall_s):
                if self._ends is not None:
                    log.warning("%s: nothing fetched for %.0f s before the end offsets: stopping", self.topic,
                                self.stall_s)
                break
            if batch:
                self.stats.records += len(batch)
                yield batch

    def _accept(self, tp: TopicPartition, records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        kept: list[ConsumerRecord] = []
        for record in records:
            if self._ends is not None and record.offset >= self._ends[tp]:
                self._finish(tp)  # past the end captured at start: done (whether the end was right is checked)
                break
            if self._ends is None and record.timestamp > self.fence_ms:
                self._finish(tp)  # received after reading began (idle mode's bound on a busy topic)
                break
            if record.timestamp < self.since_ms:
                self.stats.skipped_older += 1
            else:
                kept.append(record)
        return kept

    def _ends_hold(self, tps: list[TopicPartition]) -> bool:
        """Probe past the captured ends: a record at or beyond the end the broker reports now proves its end
        offsets wrong (records merely written since we began lie below the fresh end). False: switched to idle."""
        assert self._ends is not None
        for tp in tps:
            self.consumer.seek(tp, self._ends[tp])
        self.consumer.resume(*tps)
        deadline = time.monotonic() + self.probe_s
        beyond: list[ConsumerRecord] = []
        while not beyond and time.monotonic() < deadline:
            beyond = [r for records in self.consumer.poll(timeout_ms=100).values() for r in records]
        fresh = self._end_offsets(tps) if beyond else None
        wrong = [r for r in beyond if fresh is None or r.offset >= fresh[TopicPartition(r.topic, r.partition)]]
        if not wrong:
            return True
        log.warning(
            "%s[%d]: the broker returned offset %d at or past the end offset it reports: end offsets are "
            "unreliable on this broker, reading until the topic is idle",
            self.topic, wrong[0].partition, wrong[0].offset,
        )
        for tp in tps:
            self.consumer.seek(tp, self._ends[tp])  # re-read what the probe fetched
        self._ends = None
        self.stats.end_mode = "idle"
        self.stats.expected = None
        self._done.clear()
        return False

    def _finish(self, tp: TopicPartition) -> None:
        self._done.add(tp)
        self.consumer.pause(tp)
