"""SR-GNN-style sessions streamed through Kafka arrive whole: every click once, each session in its own order."""

from __future__ import annotations

import numpy as np
import pytest

from producers.session_stream import SessionStream, StreamClock, stream_sessions
from streamrec.events import parse_event
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import read_topic

pytestmark = pytest.mark.integration


def test_a_session_stream_arrives_whole_and_in_session_order(settings):
    rng = np.random.default_rng(3)
    train = [rng.integers(1, 40, size=rng.integers(2, 8)) for _ in range(120)]
    test = [rng.integers(1, 40, size=rng.integers(2, 8)) for _ in range(40)]
    stream = SessionStream("toy", train, test, StreamClock(seed=3))
    ensure_topics(settings)
    summary = stream_sessions(settings, stream, progress=False)
    assert summary.events == len(stream) and summary.lost == 0

    records = read_topic(settings, settings.events_topic, done=lambda recs: len(recs) >= len(stream), timeout_s=60)
    events = [parse_event(r.value) for r in records]
    assert len(events) == len(stream) and len({e.event_id for e in events}) == len(stream)
    by_session: dict[str, list[tuple[int, str]]] = {}
    for event in events:  # one partition per user: a session's clicks arrive in the order they were sent
        by_session.setdefault(event.session_id, []).append((event.ts_ms, event.item_id))
    assert [item for _, item in by_session["toy-test-7"]] == [str(i) for i in test[7]]
    assert all(stamps == sorted(stamps) for stamps in ([t for t, _ in v] for v in by_session.values()))
    window_ms = int(summary.window_start.timestamp() * 1000)
    assert all((e.ts_ms >= window_ms) == ("-test-" in e.session_id) for e in events)
