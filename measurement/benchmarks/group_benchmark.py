"""`streamrec bench group`: how long the consumer group takes to hand out partitions on this broker.

Four moments a deployment lives through, each timed from the action to the moment every partition is
owned again: the first member joins; a second joins (rebalance); a member leaves cleanly (SIGTERM path,
LeaveGroup); a member is SIGKILLed (the coordinator waits out `session_timeout_ms`). Progress on stderr,
the table on stdout (or JSON with --json) and through the one report writer (group.md, .csv, .json, .png).
"""

from __future__ import annotations

import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass

from kafka import KafkaConsumer

from measurement.report import BenchmarkResult
from streamrec.dev_stack import spawn_with_settings
from streamrec.kafka_clients import make_consumer
from streamrec.settings import Settings
from streamrec.topics import TopicSpec, ensure_topics

_MEMBER = """
import sys, time
from streamrec.kafka_clients import make_consumer
from streamrec.settings import Settings
consumer = make_consumer(Settings(), sys.argv[2], "bench-group-member")
consumer.subscribe([sys.argv[1]])
while True:
    consumer.poll(timeout_ms=100)
    if consumer.assignment():
        print("assigned", flush=True)
"""


@dataclass(frozen=True)
class GroupTiming:
    """Every run's seconds for one moment, from the action until all partitions are owned again."""

    moment: str
    seconds: list[float]


def _owned(consumers: list[KafkaConsumer]) -> set[int]:
    for consumer in consumers:
        consumer.poll(timeout_ms=50)
    return {tp.partition for c in consumers for tp in c.assignment()}


def _until_owned(consumers: list[KafkaConsumer], partitions: int, timeout_s: float = 60,
                 each_member: bool = False) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        owned = _owned(consumers)
        members_ok = not each_member or all(c.assignment() for c in consumers)
        if len(owned) == partitions and members_ok:
            return time.monotonic() - started
    raise TimeoutError(f"partitions not all owned within {timeout_s:.0f} s")


def measure_group(settings: Settings, rounds: int = 3, log_dir=None) -> list[GroupTiming]:
    """Time the four moments `rounds` times on a fresh topic with the configured partition count."""
    partitions = settings.events_partitions
    topic = f"bench-group-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [TopicSpec(topic, partitions, settings.replication_factor, {})])
    timings: dict[str, list[float]] = {m: [] for m in ("first member joins", "second member joins",
                                                       "a member leaves (SIGTERM)", "a member is SIGKILLed")}
    for round_ in range(1, rounds + 1):
        print(f"bench-group: round {round_}/{rounds}", file=sys.stderr)
        group = f"bench-group-{uuid.uuid4().hex[:8]}"
        first = make_consumer(settings, group, "bench-group-a")
        second = make_consumer(settings, group, "bench-group-b")
        try:
            started = time.monotonic()
            first.subscribe([topic])
            _until_owned([first], partitions)
            timings["first member joins"].append(time.monotonic() - started)

            started = time.monotonic()
            second.subscribe([topic])
            _until_owned([first, second], partitions, each_member=True)
            timings["second member joins"].append(time.monotonic() - started)

            started = time.monotonic()
            second.close()  # LeaveGroup, as a SIGTERMed worker does
            _until_owned([first], partitions)
            timings["a member leaves (SIGTERM)"].append(time.monotonic() - started)

            member = spawn_with_settings(["-c", _MEMBER, topic, group], settings,
                                         (log_dir or _tmp()) / f"member-{round_}.log")
            try:
                deadline = time.monotonic() + 60
                while len(first.assignment()) == partitions:  # wait for the member to take its share
                    if time.monotonic() > deadline:
                        raise TimeoutError("the member process never joined the group")
                    _owned([first])
            finally:
                member.send_signal(signal.SIGKILL)
                member.wait(10)
            started = time.monotonic()
            _until_owned([first], partitions, timeout_s=120)
            timings["a member is SIGKILLed"].append(time.monotonic() - started)
        finally:
            first.close()
    return [GroupTiming(moment, seconds) for moment, seconds in timings.items()]


def _tmp():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="bench-group-"))


def group_result(timings: list[GroupTiming], broker: str, settings: Settings) -> BenchmarkResult:
    """The moments as one table: median and slowest hand-over in seconds, and how many runs."""
    rows = {t.moment: {"median": statistics.median(t.seconds), "max": max(t.seconds), "runs": len(t.seconds)}
            for t in timings}
    return BenchmarkResult(
        title=f"consumer group hand-over on {broker}", row_label="moment",
        units={"median": "s", "max": "s", "runs": "count"}, rows=rows,
        info={"session_timeout_ms": settings.session_timeout_ms,
              "heartbeat_interval_ms": settings.heartbeat_interval_ms, "partitions": settings.events_partitions,
              "seconds": {t.moment: t.seconds for t in timings}},
    )
