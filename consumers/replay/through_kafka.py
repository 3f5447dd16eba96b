"""Stage a file's events in a replay-only events topic, so a file replay also travels the Kafka path."""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from producers.event_producer import EventProducer
from streamrec.events import Event
from streamrec.settings import Settings
from streamrec.topics import ensure_topics, historical_topic


def stage_events(events: Sequence[Event], settings: Settings, topic: str, progress: bool = True) -> int:
    """Produce `events` (keyed by user, record time = event time) into `topic`, created if missing."""
    if topic in (settings.events_topic, settings.notifications_topic, settings.dlq_topic):
        raise ValueError(f"refusing to stage replay events in the live topic {topic!r}")
    ensure_topics(settings, [historical_topic(settings, topic)])  # 2019 record times must survive retention
    with EventProducer(settings, topic=topic, client_id="streamrec-replay-stage") as producer:
        for event in tqdm(events, desc=f"stage {topic}", unit="ev", disable=not progress):
            producer.emit(event)
    return len(events)
