"""What each known trigger got on the notifications topic: once, twice or more, never; and the table row."""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from kafka.consumer.fetcher import ConsumerRecord

from streamrec.events import AddToCart, Event, PageView, utc_now
from streamrec.notifications import decode_notification
from streamrec.settings import Settings
from tests.pipeline_helpers import read_topic, send


def fault_scale() -> int:
    """`make test` runs each experiment once at scale 1; `make test-faults` sets STREAMREC_FAULT_SCALE (more
    events, more kills)."""
    return max(1, int(os.environ.get("STREAMREC_FAULT_SCALE", "1")))


@dataclass(frozen=True)
class TriggerCounts:
    """Per trigger: `duplicated` counts triggers a user would see twice (two different notifications, or one
    notification id published twice that the notifier then drops: `repeated_records`)."""

    expected: int
    once: int
    lost: list[str]
    duplicated: int  # triggers with more than one distinct notification id
    repeated_records: int  # extra copies of the same notification id (at-least-once redelivery)
    unexpected: int  # notifications for events that are not expected triggers

    @classmethod
    def of(cls, expected: set[str], records: Iterable[ConsumerRecord]) -> TriggerCounts:
        ids: dict[str, set[str]] = defaultdict(set)
        copies: dict[str, int] = defaultdict(int)
        for record in records:
            notification = decode_notification(record.value)
            ids[notification.trigger_event_id].add(notification.notification_id)
            copies[notification.trigger_event_id] += 1
        return cls(
            expected=len(expected),
            once=sum(1 for t in expected if copies.get(t) == 1),
            lost=sorted(expected - set(ids)),
            duplicated=sum(1 for t in expected if len(ids.get(t, ())) > 1),
            repeated_records=sum(n - len(ids[t]) for t, n in copies.items()),
            unexpected=sum(1 for t in ids if t not in expected),
        )


    def assert_exact(self, settings: Settings) -> None:
        """The bar: nothing lost, nothing a user sees twice; with transactions, not even a repeated record."""
        assert not self.lost, f"{len(self.lost)} of {self.expected} triggers lost: {self.lost[:5]}"
        assert self.duplicated == 0, f"{self.duplicated} triggers got two different notifications"
        assert self.unexpected == 0, f"{self.unexpected} notifications for events that are not triggers"
        if settings.delivery == "exactly-once":
            assert self.repeated_records == 0, f"{self.repeated_records} records published twice in a transaction"


@dataclass(frozen=True)
class FaultRow:
    fault: str
    mode: str
    counts: TriggerCounts
    recovered: bool  # without a person: no restart of our processes, no command run
    recovery_s: float | None
    note: str = ""

    @staticmethod
    def markdown(rows: Sequence[FaultRow]) -> list[str]:
        lines = [
            "| fault | delivery | triggers | lost | duplicated | repeated records | unexpected "
            "| recovered without a person | time to recover | note |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            c = r.counts
            recovery = "-" if r.recovery_s is None else f"{r.recovery_s:.1f} s"
            lines.append(
                f"| {r.fault} | {r.mode} | {c.expected} | {len(c.lost)} | {c.duplicated} | {c.repeated_records} "
                f"| {c.unexpected} | {'yes' if r.recovered else 'no'} | {recovery} | {r.note} |"
            )
        return lines


@dataclass
class NotificationLedger:
    """Reads the notifications topic until every expected trigger is there (or time runs out)."""

    settings: Settings
    expected: set[str]
    probes: set[str] = field(default_factory=set)

    def wait_for(self, trigger_ids: set[str], timeout_s: float) -> list[ConsumerRecord]:
        def done(records: list[ConsumerRecord]) -> bool:
            return {decode_notification(r.value).trigger_event_id for r in records} >= trigger_ids

        return read_topic(self.settings, self.settings.notifications_topic, done=done, timeout_s=timeout_s,
                          settle_s=1.5)

    def counts(self, timeout_s: float = 90) -> TriggerCounts:
        records = self.wait_for(self.expected | self.probes, timeout_s)
        ours = [r for r in records if decode_notification(r.value).trigger_event_id not in self.probes]
        return TriggerCounts.of(self.expected, ours)

    def time_to_recover(self, since_monotonic: float, timeout_s: float = 60) -> float | None:
        """Send a probe trigger now; seconds from `since_monotonic` until its notification is on the topic."""
        probe = probe_events()
        self.probes.add(probe[-1].event_id)
        send(self.settings, probe)
        target = {probe[-1].event_id}
        records = read_topic(
            self.settings, self.settings.notifications_topic,
            done=lambda recs: target <= {decode_notification(r.value).trigger_event_id for r in recs},
            timeout_s=timeout_s,
        )
        if not target <= {decode_notification(r.value).trigger_event_id for r in records}:
            return None
        return time.monotonic() - since_monotonic


def probe_events() -> list:
    """A fresh user views two products and adds one to the cart: the cart add is a trigger."""
    user = f"probe-{uuid.uuid4().hex[:8]}"
    now = utc_now() - timedelta(seconds=1)
    views = [PageView(user_id=user, session_id=f"{user}-s", item_id=f"probe-item-{i}", ts=now) for i in range(2)]
    return [*views, AddToCart(user_id=user, session_id=f"{user}-s", item_id="probe-item-0", ts=now)]


def restamped_recent(events: Sequence[Event]) -> list[Event]:
    """The simulated traffic re-stamped in order over the last seconds, so the log a rebuild reads is recent."""
    start = utc_now() - timedelta(seconds=5 + len(events) * 0.005)
    return [e.model_copy(update={"ts": start + timedelta(milliseconds=5 * i)}) for i, e in enumerate(events)]


def wait_for_log_line(log_path: Path, text: str, timeout_s: float = 60) -> None:
    """Block until the process writing `log_path` logged `text` (e.g. "partitions assigned")."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log_path.exists() and text in log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else "(no log)"
    raise AssertionError(f"{log_path.name} never logged {text!r}:\n{tail}")
