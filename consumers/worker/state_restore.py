"""Rebuild the Redis session store from the log after Redis came back empty (`streamrec restore-state`).

Reads the events topic from `since` and applies the events with `SessionStore.apply_batch` (idempotent by
event id), feeding the streaming baseline's `observe` the same way the worker does, then reads the
notifications topic from `since` and records what was sent (cooldowns, "trigger already notified").
Run it before the workers start again: it replays history, so it must not interleave with newer writes.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from tqdm import tqdm

from consumers.worker.event_decoding import decode_event
from consumers.worker.topic_window import TopicWindowReader, WindowStats
from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.baselines.tool_transitions import ToolTransitionRecommender
from model.recommender import Recommender
from streamrec.events import Event, EventDecodeError
from streamrec.kafka_clients import make_consumer
from streamrec.notifications import Notification, decode_notification
from streamrec.session_store import SentNotification, SessionStore, UnappliableEvent
from streamrec.settings import Settings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30m`, `2h`, `1d` (before `now`) or an ISO 8601 time (UTC unless it names a zone)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"since: {text!r} is neither a duration (30m, 2h, 1d) nor an ISO time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        raise ValueError(f"since: {moment.isoformat()} is in the future")
    return moment


@dataclass
class RestoreSummary:
    since: str
    events_read: int = 0
    events_applied: int = 0  # new to Redis
    events_duplicate: int = 0  # already in Redis (a second restore: all of them)
    events_undecodable: int = 0
    notifications_read: int = 0
    notifications_recorded: int = 0
    notifications_already_recorded: int = 0
    notifications_undecodable: int = 0
    model_rebuilt: bool = True
    seconds: float = 0.0
    events_per_s: float = 0.0
    events_window: WindowStats | None = None
    notifications_window: WindowStats | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        ew, nw = self.events_window, self.notifications_window
        return [
            f"since {self.since}, {self.seconds:.1f} s ({self.events_per_s:.0f} events/s)",
            f"events: {self.events_read} read, {self.events_applied} applied, {self.events_duplicate} already "
            f"present, {self.events_undecodable} undecodable, {ew.skipped_older if ew else 0} older than since "
            f"[start: {ew.start_mode if ew else '-'}, end: {ew.end_mode if ew else '-'}]",
            f"notifications: {self.notifications_read} read, {self.notifications_recorded} recorded, "
            f"{self.notifications_already_recorded} already present, {self.notifications_undecodable} "
            f"undecodable, {nw.skipped_older if nw else 0} older than since",
            "streaming models (g: co-occurrence, popularity and tool transitions): "
            + ("rebuilt from the applied events" if self.model_rebuilt else "not rebuilt (--no-model)"),
        ]


def restore_state(
    settings: Settings,
    since: datetime,
    progress: bool = True,
    batch_size: int = 500,
    rebuild_model: bool = True,
    idle_s: float = 2.0,
) -> RestoreSummary:
    """Replay events and notifications with timestamps >= `since` into the store; safe to run twice."""
    client = settings.redis_client()
    client.ping()  # fail fast with a clear error when Redis is not there
    store = SessionStore(client, settings)
    # The streaming models whose counts Redis lost with it (session-kNN's index is rebuilt by its own observe too).
    models = [SessionCooccurrenceRecommender(client, settings.key_prefix),
              ToolTransitionRecommender(client, settings.key_prefix)] if rebuild_model else []
    summary = RestoreSummary(since=since.isoformat(), model_rebuilt=rebuild_model)
    since_ms = int(since.timestamp() * 1000)
    # A record stamped later than this was received after the restore began (the event-time policy refuses
    # times further ahead of receipt), which bounds reading a busy topic when end offsets cannot be trusted.
    fence_ms = int(time.time() * 1000 + settings.event_max_future_skew_s * 1000)
    started = time.monotonic()

    def reader(topic: str) -> TopicWindowReader:
        consumer = make_consumer(settings, None, "streamrec-restore", allow_auto_create_topics=False)
        return TopicWindowReader(consumer, topic, since_ms, fence_ms, batch_size, idle_s)

    _restore_events(reader(settings.events_topic), store, models, settings, summary, progress)
    summary.seconds = time.monotonic() - started
    summary.events_per_s = summary.events_read / summary.seconds if summary.seconds else 0.0
    _restore_notifications(reader(settings.notifications_topic), store, summary, progress)
    summary.seconds = time.monotonic() - started
    return summary


def _restore_events(
    events: TopicWindowReader,
    store: SessionStore,
    models: Sequence[Recommender],
    settings: Settings,
    summary: RestoreSummary,
    progress: bool,
) -> None:
    """Apply the window's events as the worker does (and let the streaming model observe them); counts go
    into `summary`. Closes the reader's consumer."""
    summary.events_window = events.stats
    with _bar("events", progress) as bar:
        try:
            for records in events.batches():
                decoded: list[Event] = []
                received_ms = int(time.time() * 1000)
                for record in records:
                    try:  # what the worker dead-letters (undecodable, or refused by the event-time policy)
                        event = decode_event(record.value, settings, received_ms)
                        store.check_appliable(event)
                    except (EventDecodeError, UnappliableEvent):
                        summary.events_undecodable += 1
                        continue
                    decoded.append(event)
                contexts = store.apply_batch(decoded)
                for model in models:  # each counts an event id once, so a second restore adds nothing
                    model.observe(decoded, contexts)
                duplicates = sum(c.duplicate for c in contexts)
                summary.events_read += len(records)
                summary.events_duplicate += duplicates
                summary.events_applied += len(contexts) - duplicates
                bar.total = events.stats.expected
                bar.update(len(records))
        finally:
            events.consumer.close()


def _restore_notifications(
    notifications: TopicWindowReader, store: SessionStore, summary: RestoreSummary, progress: bool
) -> None:
    """Record the window's notifications that Redis does not know yet; counts go into `summary`. Closes the
    reader's consumer."""
    summary.notifications_window = notifications.stats
    with _bar("notifications", progress) as bar:
        try:
            for records in notifications.batches():
                decoded: list[Notification] = []
                for record in records:
                    try:
                        decoded.append(decode_notification(record.value))
                    except ValueError:  # pydantic's ValidationError is a ValueError
                        summary.notifications_undecodable += 1
                recorded = _record_new_notifications(store, decoded)
                summary.notifications_read += len(records)
                summary.notifications_recorded += recorded
                summary.notifications_already_recorded += len(decoded) - recorded
                bar.total = notifications.stats.expected
                bar.update(len(records))
        finally:
            notifications.consumer.close()


def _record_new_notifications(store: SessionStore, notifications: list[Notification]) -> int:
    """Record the notifications Redis does not know yet, with the worker's rows (`SentNotification.of`).

    Recording one again would be harmless (the trigger dedupe is a set, cooldowns only move forward: ZADD GT);
    skipping known triggers keeps a second restore from writing anything.
    """
    if not notifications:
        return 0
    sent = [SentNotification.of(n) for n in notifications]
    known = store.filters_batch([row.query for row in sent])
    new = [row for row, filters in zip(sent, known, strict=True) if not filters.trigger_already_notified]
    if new:
        store.record_notifications(new)
    return len(new)


def _bar(what: str, enabled: bool) -> tqdm:
    return tqdm(desc=f"restoring {what}", unit=" records", file=sys.stderr, disable=not enabled, leave=True)
