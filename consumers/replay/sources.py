"""Events to replay: the events topic read from the beginning, or a dataset file, in event-time order.

The time window is applied to each event's own `ts`, never through the broker's offset-for-time lookups
(unreliable on some Kafka-compatible brokers, and record timestamps need not be event times).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kafka import TopicPartition
from kafka.errors import KafkaError
from tqdm import tqdm

from streamrec.events import Event, EventDecodeError, parse_event, utc_now
from streamrec.settings import Settings

log = logging.getLogger(__name__)

FILE_FORMATS = ("auto", "event-log", "asos", "yoochoose", "rees46")


@dataclass
class ReplayInput:
    """Events before the window (warm-up and training data) and the window itself, each in event-time order."""

    warmup: list[Event]
    window: list[Event]
    source: str

    @property
    def window_start(self) -> datetime | None:
        return self.window[0].ts if self.window else None

    @property
    def window_end(self) -> datetime | None:
        return self.window[-1].ts if self.window else None


def in_event_time_order(events: Iterable[Event]) -> list[Event]:
    """Sorted by event time; equal times keep their arrival order (a stable sort)."""
    return sorted(events, key=lambda e: e.ts)


def split_at(
    events: list[Event], source: str, since: datetime | None, until: datetime | None, warmup_share: float = 0.5
) -> ReplayInput:
    """Warm-up = events before `since` (or the first `warmup_share` of events); window = [since, until)."""
    ordered = in_event_time_order(events)
    if until is not None:
        ordered = [e for e in ordered if e.ts < until]
    if since is None:
        cut = int(len(ordered) * warmup_share)
        since = ordered[cut].ts if cut < len(ordered) else None
    if since is None:
        return ReplayInput(ordered, [], source)
    return ReplayInput([e for e in ordered if e.ts < since], [e for e in ordered if e.ts >= since], source)


def read_topic_events(
    settings: Settings, topic: str | None = None, until: datetime | None = None, idle_s: float = 3.0,
    max_events: int | None = None, progress: bool = True, stall_s: float = 30.0,
) -> list[Event]:
    """Every decodable event of `topic` from the beginning (records after `until` dropped by event time).

    Reads without a consumer group (no committed offsets are touched). A partition is done once it hands
    over an event at or after `until` (or after the moment the read began, for a topic that keeps
    receiving live traffic); reading stops when every partition is done or none delivered for `idle_s`, but
    a partition still short of the end offset the broker gave at the start waits up to `stall_s` (a busy broker
    can take longer than `idle_s` to hand over a partition's first records; stopping then lost whole partitions).
    Undecodable records are counted and skipped: the worker dead-letters them, a replay only reads.
    """
    from streamrec.kafka_clients import make_consumer

    topic = topic or settings.events_topic
    consumer = make_consumer(settings, None, "streamrec-replay-reader")
    try:
        partitions = None
        deadline = time.monotonic() + 15
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.2)
        if not partitions:
            raise ValueError(f"topic {topic!r} does not exist or has no partitions")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        events: list[Event] = []
        undecodable = 0
        stop_at = min(until, utc_now()) if until is not None else utc_now()
        done: set[TopicPartition] = set()
        ends = _end_offsets(consumer, assigned)
        last_record = time.monotonic()
        bar = tqdm(desc=f"read {topic}", unit="ev", disable=not progress)
        while len(done) < len(assigned) and time.monotonic() - last_record < (
                stall_s if _short_of_end(consumer, assigned, done, ends) else idle_s):
            polled = consumer.poll(timeout_ms=200, max_records=5000)
            for tp, records in polled.items():
                last_record = time.monotonic()
                bar.update(len(records))
                for record in records:
                    try:
                        event = parse_event(record.value, settings.max_event_bytes)
                    except EventDecodeError:
                        undecodable += 1
                        continue
                    if event.ts >= stop_at:
                        done.add(tp)
                    if until is None or event.ts < until:
                        events.append(event)
                if tp in done:
                    consumer.pause(tp)  # caught up: the rest of this partition is after the window
            if max_events is not None and len(events) >= max_events:
                break
        bar.close()
        if undecodable:
            log.warning("skipped %d undecodable records in %s", undecodable, topic)
        return events
    finally:
        consumer.close()


def _end_offsets(consumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The partitions' end offsets as the read begins; empty when the broker does not answer them."""
    try:
        return dict(consumer.end_offsets(partitions, timeout_ms=5000))
    except KafkaError as error:
        log.debug("end offsets unknown: %r", error)
        return {}


def _short_of_end(consumer, partitions: list[TopicPartition], done: set[TopicPartition],
                  ends: dict[TopicPartition, int]) -> bool:
    """Whether a partition that is not done has not yet been read up to its starting end offset."""
    for tp in partitions:
        if tp in done or tp not in ends:
            continue
        try:
            if consumer.position(tp, timeout_ms=200) < ends[tp]:
                return True
        except (KafkaError, AssertionError):  # position unknown yet: the partition has not started
            return True
    return False


def detect_file_format(path: Path) -> str:
    if path.is_dir() and path.name.startswith("yoochoose"):
        return "yoochoose"
    if path.is_dir() and path.name.startswith("rees46"):
        return "rees46"
    if path.suffix == ".txt":
        return "yoochoose"
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if "dummyUserId" in names:
            return "asos"
        if "user_session" in names:
            return "rees46"
    return "event-log"


def read_file_events(path: Path, fmt: str = "auto") -> tuple[list[Event], datetime | None]:
    """The file's events and, where the dataset defines one, where its test window starts.

    A yoochoose session-rec folder gives train_full + test (the window starts at the test split).
    """
    fmt = detect_file_format(path) if fmt == "auto" else fmt
    if fmt == "yoochoose":
        import pandas as pd

        from model.datasets import yoochoose

        if path.is_dir():
            train = yoochoose.load_clicks(path / yoochoose.SPLITS["train_full"])
            test = yoochoose.load_clicks(path / yoochoose.SPLITS["test"])
            frame = pd.concat([train, test], ignore_index=True)
            return list(yoochoose.click_events(frame)), test["ts"].min().to_pydatetime(warn=False)
        return list(yoochoose.click_events(yoochoose.load_clicks(path))), None
    if fmt == "rees46":
        from model.datasets import rees46

        return rees46.load_events(path / "events.parquet" if path.is_dir() else path), None
    if fmt == "asos":
        from model.datasets import asos

        return list(asos.purchase_events(path)), None
    if fmt == "event-log":
        from model.datasets.event_log import read_event_log

        return list(read_event_log(path)), None
    raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FILE_FORMATS)}")
