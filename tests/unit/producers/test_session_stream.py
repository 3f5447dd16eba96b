"""SR-GNN sessions as a timed stream: sessions rebuilt exactly, order kept, train before the window, test after."""

from __future__ import annotations

import numpy as np
import pandas as pd

from producers.session_stream import SessionStream, StreamClock, sessions_from_prefixes, sessions_in_file_order


def _prefixes(sessions: list[list[int]]) -> pd.DataFrame:
    """SR-GNN's test augmentation: for each session, prefix[:-i] -> prefix[-i], longest first."""
    rows = [(s[:-i], s[-i]) for s in sessions for i in range(1, len(s))]
    return pd.DataFrame({"prefix": [p for p, _ in rows], "target": [t for _, t in rows]})


def test_test_sessions_are_rebuilt_from_their_prefixes():
    sessions = [[5, 3, 5, 9], [7, 7], [1, 2, 3]]
    rebuilt = sessions_from_prefixes(_prefixes(sessions))
    assert [list(s) for s in rebuilt] == sessions


def test_train_sessions_keep_file_order_and_positions():
    frame = pd.DataFrame({"session": [0, 0, 2, 2, 2, 1, 1], "pos": [1, 0, 0, 2, 1, 0, 1],
                          "item": [11, 10, 20, 22, 21, 30, 31]})
    assert [list(s) for s in sessions_in_file_order(frame)] == [[10, 11], [20, 21, 22], [30, 31]]


def _stream(seed: int = 7) -> SessionStream:
    rng = np.random.default_rng(0)
    train = [rng.integers(1, 50, size=rng.integers(2, 12)) for _ in range(300)]
    test = [rng.integers(1, 50, size=rng.integers(2, 12)) for _ in range(100)]
    return SessionStream("toy", train, test, StreamClock(start_gap_s=2.0, median_gap_s=30.0, seed=seed))


def test_events_come_in_event_time_order_and_each_session_in_its_own_order():
    stream = _stream()
    events = list(stream.events())
    assert len(events) == len(stream)
    stamps = [e.ts_ms for e in events]
    assert stamps == sorted(stamps)
    per_session: dict[str, list[str]] = {}
    for event in events:
        per_session.setdefault(event.session_id, []).append(event.item_id)
    assert per_session["toy-train-17"] == [str(i) for i in stream.train.sessions[17]]
    assert per_session["toy-test-3"] == [str(i) for i in stream.test.sessions[3]]
    firsts = [next(e.ts_ms for e in events if e.session_id == f"toy-train-{i}") for i in range(300)]
    assert firsts == sorted(firsts)  # sessions start in file order
    open_at_once = max(sum(1 for s in range(300) if firsts[s] <= t < firsts[s] + 120_000) for t in firsts[::30])
    assert open_at_once > 5  # sessions interleave as real traffic does


def test_every_training_click_precedes_the_window_and_every_test_click_follows_it():
    stream = _stream()
    window_ms = int(stream.window_start.timestamp() * 1000)
    for event in stream.events():
        assert (event.ts_ms < window_ms) == ("-train-" in event.session_id)


def test_the_clock_is_deterministic_for_a_seed_and_changes_with_it():
    assert [e.ts for e in _stream(7).events()] == [e.ts for e in _stream(7).events()]
    assert [e.ts for e in _stream(7).events()] != [e.ts for e in _stream(8).events()]
    gaps = np.diff([e.ts_ms for e in _stream().events() if e.session_id == "toy-train-5"]) / 1000
    assert ((gaps >= 1.0) & (gaps <= 600.0)).all()
