"""An events topic read from the beginning in event-time order without holding it: a k-way merge of partitions.

Each partition has its own reader and a buffer of at most one poll (`buffer` events), refilled only once it
is empty; the next event is the least (event time, partition, offset) among the partitions' heads, taken only
once every partition that may still deliver has a head, so a slow partition is waited for, not overtaken.
The result is the topic in event-time order exactly when each partition is (what our producers write: per-key
order, in time order); `out_of_order` counts events that came behind an earlier one, so a caller can tell.

One reader per partition rather than one consumer paused and resumed: kafka-python 3.0.12 parks the fetched
records of a paused partition and, once another partition's drained batch sits in its in-line slot, never
hands the parked ones back after `resume` nor fetches that partition again; the read stalled with whole
partitions unread (the rees46 slice: 12,821 of 17,434 events). Not polling a reader needs no pause.

A partition is finished when it reached its end offset as the read began (records appended later are not
part of this read), handed over an event at or after `stop_at` (kept if before `until`, the rest dropped by
event time), or delivered nothing for `stall_s` while short of its end (`idle_s` when the broker gave no end).
Reads without a consumer group: no committed offsets are touched. Undecodable records are counted and skipped:
the worker dead-letters them, a replay only reads.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime

from kafka import TopicPartition
from kafka.errors import KafkaError

from streamrec.events import Event, EventDecodeError, parse_event, utc_now
from streamrec.settings import Settings

log = logging.getLogger(__name__)

PARTITION_BUFFER = 2000
# Per reader. The worker's consumers fetch up to 4 MB a partition (16 events of the largest size); here that, as
# decoded records, was most of the read's memory (193 MB peak for YooChoose's 557k events, 104 MB at 1 MB, 10%
# slower). An event larger than this still comes: the broker hands over a first batch bigger than the limit.
READ_FETCH_BYTES = 1_048_576


class _Partition:
    """One partition's side of the merge: its reader, its buffered (event, offset) pairs, why it stopped."""

    def __init__(self, tp: TopicPartition, reader, end: int | None) -> None:
        self.tp = tp
        self.reader = reader
        self.end = end
        self.buffer: deque[tuple[Event, int]] = deque()
        self.next_offset: int | None = None
        self.finished = False
        self.waiting_since: float | None = None


class TopicEventStream:
    """One read of `topic` (iterate once): its decodable events in (event time, partition, offset) order.

    `readers` maps each partition to a consumer assigned to it alone and positioned at its beginning (`open`
    makes them); `ends` maps partition to the offset the read stops at (without one: the idle rule).
    """

    def __init__(
        self, readers: dict[int, object], topic: str, ends: dict[int, int], stop_at: datetime,
        until: datetime | None = None, max_event_bytes: int | None = None, idle_s: float = 3.0,
        stall_s: float = 30.0, buffer: int = PARTITION_BUFFER, clock: Callable[[], float] = time.monotonic,
        exact_ends: bool = True,
    ) -> None:
        self.topic = topic
        # Ends from an earlier pass are exact (where it stopped). Ends the broker gave are a floor only: some
        # Kafka-compatible brokers (Tansu) answer end offsets below records they already hold, and a read that
        # stopped there lost about 1% of the events; past such an end a partition is read until a poll comes
        # back empty (records appended after the read began are still cut by event time, `stop_at`).
        self._exact_ends = exact_ends
        self.undecodable = 0
        self.out_of_order = 0
        self.stalled: list[int] = []
        self._parts = {p: _Partition(TopicPartition(topic, p), reader, ends.get(p))
                       for p, reader in sorted(readers.items())}
        self._stop_at = stop_at
        self._until = until
        self._max_event_bytes = max_event_bytes
        self._idle_s = idle_s
        self._stall_s = stall_s
        self._cap = max(1, buffer)
        self._clock = clock

    @classmethod
    def open(
        cls, settings: Settings, topic: str, until: datetime | None = None, stop_at: datetime | None = None,
        ends: dict[int, int] | None = None, **options: object,
    ) -> TopicEventStream:
        """A stream with its own readers (close it, or use `with`). `ends` default to the end offsets as of now
        (a partition left out of a given `ends` is not read: it did not exist when that read was planned).

        `stop_at` defaults to `until` or now, whichever is earlier: a topic that keeps receiving live traffic
        is read up to the moment the read began.
        """
        from streamrec.kafka_clients import make_consumer

        def reader_consumer():
            return make_consumer(settings, None, "streamrec-replay-reader", max_partition_fetch_bytes=READ_FETCH_BYTES)

        probe = reader_consumer()
        readers: dict[int, object] = {}
        try:
            partitions = _partitions_of(probe, topic)
            assigned = [TopicPartition(topic, p) for p in partitions]
            exact = ends is not None
            ends = _end_offsets(probe, assigned) if ends is None else {p: ends.get(p, 0) for p in partitions}
            for tp in assigned:  # the probe reads the first partition
                reader = readers[tp.partition] = probe if not readers else reader_consumer()
                reader.assign([tp])
                reader.seek_to_beginning(tp)
            if stop_at is None:
                stop_at = min(until, utc_now()) if until is not None else utc_now()
            return cls(readers, topic, ends, stop_at, until, settings.max_event_bytes, exact_ends=exact, **options)
        except BaseException:
            for reader in [probe, *(r for r in readers.values() if r is not probe)]:
                reader.close()
            raise

    def close(self) -> None:
        for part in self._parts.values():
            part.reader.close()

    def __enter__(self) -> TopicEventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reached(self) -> dict[int, int]:
        """Per partition, where this read stopped: the `ends` that make a later read see the same records."""
        if self._exact_ends:
            return {
                p: part.end if part.end is not None and p not in self.stalled else (part.next_offset or 0)
                for p, part in self._parts.items()
            }
        return {p: part.next_offset or 0 for p, part in self._parts.items()}

    def __iter__(self) -> Iterator[Event]:
        heads: list[tuple[datetime, int, int]] = []  # (event time, partition, offset) of each non-empty buffer
        starving = set(self._parts)  # partitions that may still deliver and have nothing buffered
        last: datetime | None = None
        while True:
            if starving:
                for p in self._fill(starving):
                    event, offset = self._parts[p].buffer[0]
                    heapq.heappush(heads, (event.ts, p, offset))
                continue
            if not heads:
                break
            _, p, _ = heapq.heappop(heads)
            part = self._parts[p]
            event, _ = part.buffer.popleft()
            if part.buffer:
                nxt, offset = part.buffer[0]
                heapq.heappush(heads, (nxt.ts, p, offset))
            elif not part.finished:
                starving.add(p)
            if last is not None and event.ts < last:
                self.out_of_order += 1
            last = event.ts
            yield event
        if self.undecodable:
            log.warning("skipped %d undecodable records in %s", self.undecodable, self.topic)

    def _fill(self, starving: set[int]) -> list[int]:
        """Poll each starving partition's reader once; settle which of them are finished.

        Returns the partitions that now have a buffered head (their heads join the merge).
        """
        fed: list[int] = []
        for p in sorted(starving):
            part = self._parts[p]
            if part.waiting_since is None:
                part.waiting_since = self._clock()
            if part.end is not None and self._exact_ends and self._caught_up(part):
                self._finish(part)
            else:
                records = part.reader.poll(timeout_ms=200, max_records=self._cap).get(part.tp, [])
                for record in records:
                    self._take(part, record)
                    if part.finished:
                        break
                if not records and part.end is not None and not self._exact_ends and self._caught_up(part):
                    self._finish(part)  # at or past the broker's end, and nothing more came
            if part.buffer:
                part.waiting_since = None
                fed.append(p)
            elif not part.finished:
                self._settle(p, part, self._clock())
            if part.finished or part.buffer:
                starving.discard(p)
        return fed

    def _take(self, part: _Partition, record) -> None:
        """Buffer one record's event, or finish the partition at its end offset or event-time limit."""
        if self._exact_ends and part.end is not None and record.offset >= part.end:
            self._finish(part)  # beyond where the first pass stopped
            return
        part.next_offset = record.offset + 1
        try:
            event = parse_event(record.value, self._max_event_bytes)
        except EventDecodeError:
            self.undecodable += 1
        else:
            if self._until is None or event.ts < self._until:
                part.buffer.append((event, record.offset))
            if event.ts >= self._stop_at:
                self._finish(part)
                return
        if self._exact_ends and part.end is not None and part.next_offset >= part.end:
            self._finish(part)

    def _settle(self, p: int, part: _Partition, now: float) -> None:
        """A starving partition that delivered nothing: stalled, or still to wait for."""
        waited = now - (part.waiting_since if part.waiting_since is not None else now)
        if waited >= (self._stall_s if part.end is not None else self._idle_s):
            if part.end is not None:
                log.warning("partition %s[%d] delivered nothing for %.0f s short of its end offset %d: read "
                            "without the rest", self.topic, p, waited, part.end)
                self.stalled.append(p)
            self._finish(part)

    def _caught_up(self, part: _Partition) -> bool:
        if part.next_offset is not None and part.next_offset >= part.end:
            return True
        try:  # the position passes transaction markers and compacted gaps that no record reports
            return part.reader.position(part.tp, timeout_ms=200) >= part.end
        except (KafkaError, AssertionError):  # position unknown yet: the partition has not started
            return False

    @staticmethod
    def _finish(part: _Partition) -> None:
        part.finished = True


def _partitions_of(consumer, topic: str, wait_s: float = 15.0) -> list[int]:
    """The topic's partitions, waiting briefly for a broker that lists a new topic a moment late."""
    deadline = time.monotonic() + wait_s
    partitions = consumer.partitions_for_topic(topic)
    while not partitions and time.monotonic() < deadline:
        time.sleep(0.2)
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise ValueError(f"topic {topic!r} does not exist or has no partitions")
    return sorted(partitions)


def _end_offsets(consumer, partitions: list[TopicPartition]) -> dict[int, int]:
    """The partitions' end offsets as the read begins; empty when the broker does not answer them."""
    try:
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions, timeout_ms=5000).items()}
    except KafkaError as error:
        log.debug("end offsets unknown: %r", error)
        return {}
