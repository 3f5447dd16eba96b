"""The topic stream merges partitions into event-time order with bounded buffers, and stops where it should:
at the end offsets, at the time limit, or after waiting out a partition that stalled. Fake readers, no broker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kafka import TopicPartition

from consumers.replay.topic_stream import TopicEventStream
from streamrec.events import PageView, encode_event

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FAR = T0 + timedelta(days=365)


@dataclass
class Record:
    offset: int
    value: bytes


def view(partition: int, second: int, n: int = 0) -> bytes:
    return encode_event(PageView(event_id=f"p{partition}-t{second}-{n}", user_id=f"u{partition}",
                                 session_id="s", item_id="i", ts=T0 + timedelta(seconds=second)))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeReader:
    """One partition's consumer: hands out `per_poll` records at a time (a poll with nothing to hand out takes its
    whole timeout on the shared fake clock) and counts the polls that came while its stream buffer was full."""

    def __init__(self, partition: int, values: list[bytes], clock: FakeClock, per_poll: int) -> None:
        self.tp = TopicPartition("t", partition)
        self.records = [Record(i, v) for i, v in enumerate(values)]
        self.position_ = 0
        self.clock = clock
        self.per_poll = per_poll
        self.polls = 0

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        self.polls += 1
        batch = self.records[self.position_: self.position_ + min(self.per_poll, max_records)]
        self.position_ += len(batch)
        if not batch:
            self.clock.now += timeout_ms / 1000
        return {self.tp: batch} if batch else {}

    def position(self, tp: TopicPartition, timeout_ms: int) -> int:
        return self.position_


def readers(records: dict[int, list[bytes]], per_poll: int = 2) -> tuple[dict[int, FakeReader], FakeClock]:
    clock = FakeClock()
    return {p: FakeReader(p, values, clock, per_poll) for p, values in records.items()}, clock


def stream(fakes: tuple[dict[int, FakeReader], FakeClock], ends: dict[int, int], **options) -> TopicEventStream:
    by_partition, clock = fakes
    return TopicEventStream(by_partition, "t", ends, options.pop("stop_at", FAR), clock=clock, **options)


def test_partitions_are_merged_into_event_time_order_ties_by_partition():
    fakes = readers({0: [view(0, 1), view(0, 4), view(0, 7)], 1: [view(1, 2), view(1, 4), view(1, 9)],
                     2: [view(2, 5), view(2, 6)]})
    events = list(stream(fakes, {0: 3, 1: 3, 2: 2}))
    assert [e.event_id for e in events] == ["p0-t1-0", "p1-t2-0", "p0-t4-0", "p1-t4-0", "p2-t5-0", "p2-t6-0",
                                            "p0-t7-0", "p1-t9-0"]


def test_a_partition_with_a_full_buffer_waits_unpolled_while_the_others_catch_up():
    # Partition 0 holds the late events: its buffer stays full while partition 1 supplies the early ones.
    fakes = readers({0: [view(0, 100 + i) for i in range(30)], 1: [view(1, i) for i in range(30)]}, per_poll=4)
    reader = stream(fakes, {0: 30, 1: 30}, buffer=6)
    peak = 0
    taken = []
    for event in reader:
        taken.append(event)
        peak = max(peak, *(len(part.buffer) for part in reader._parts.values()))
        if len(taken) == 30:  # every early event is out: partition 0 was polled once, for its head
            assert fakes[0][0].polls == 1  # (fakes: the readers by partition, the clock)
    assert [e.ts for e in taken] == sorted(e.ts for e in taken) and len(taken) == 60
    assert peak <= 6 and reader.out_of_order == 0


def test_a_stalled_partition_is_waited_for_then_given_up_and_the_others_still_come():
    # Partition 1's end offset says 5 records, the broker only ever hands over 2.
    fakes = readers({0: [view(0, i) for i in range(0, 10, 2)], 1: [view(1, 1), view(1, 3)]})
    reader = stream(fakes, {0: 5, 1: 5}, stall_s=2.0)
    events = list(reader)
    assert [e.ts.second for e in events] == [0, 1, 2, 3, 4, 6, 8]
    assert reader.stalled == [1]
    _, clock = fakes
    assert clock.now >= 2.0  # it did wait before giving up
    assert reader.reached() == {0: 5, 1: 2}  # a later pass stops where this one did


def test_without_end_offsets_a_quiet_partition_ends_after_idle_s():
    fakes = readers({0: [view(0, 1), view(0, 2)], 1: []})
    reader = stream(fakes, {}, idle_s=0.5, stall_s=30.0)
    assert len(list(reader)) == 2
    _, clock = fakes
    assert clock.now < 30.0 and reader.stalled == []


def test_records_after_the_end_offset_or_the_time_limit_are_left_out_and_bad_ones_counted():
    fakes = readers({0: [view(0, 1), b"not json", view(0, 3), view(0, 50), view(0, 4)],
                     1: [view(1, 2), view(1, 5), view(1, 6)]})
    reader = stream(fakes, {0: 5, 1: 2}, stop_at=T0 + timedelta(seconds=10), until=T0 + timedelta(seconds=10))
    events = list(reader)
    # Partition 0 stops at its event at 50 s (past the limit, dropped), partition 1 at its end offset 2.
    assert [e.ts.second for e in events] == [1, 2, 3, 5]
    assert reader.undecodable == 1


def test_an_event_behind_an_earlier_one_in_its_partition_is_counted():
    fakes = readers({0: [view(0, 5), view(0, 1)], 1: [view(1, 3)]})
    reader = stream(fakes, {0: 2, 1: 1})
    assert [e.ts.second for e in reader] == [3, 5, 1]
    assert reader.out_of_order == 1


def test_end_offsets_from_the_broker_are_a_floor_and_a_later_pass_stops_exactly_where_the_first_did():
    """Tansu answered end offsets below records it already held: a first pass that stopped there lost events."""
    values = {0: [view(0, s) for s in range(6)], 1: [view(1, s) for s in range(4)]}
    first = stream(readers(values), {0: 4, 1: 2}, exact_ends=False)  # the broker's ends, too low
    assert len(list(first)) == 10 and first.reached() == {0: 6, 1: 4}
    later = stream(readers(values), first.reached())  # exact: the first pass's stopping points
    assert len(list(later)) == 10
    assert len(list(stream(readers(values), {0: 4, 1: 2}))) == 6  # exact ends cut where they say
