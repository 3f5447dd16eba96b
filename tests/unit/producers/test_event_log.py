"""The event-log file format round-trips every event type, and bad rows fail naming the field."""

from __future__ import annotations

import pandas as pd
import pytest

from model.datasets.event_log import read_event_log, write_event_log
from producers.file_replay import detect_format
from producers.simulator import simulate
from streamrec.events import EventDecodeError


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_simulated_log_round_trips(tmp_path, suffix):
    _, events = simulate(600, seed=9)
    path = tmp_path / f"log{suffix}"
    assert write_event_log(events, path) == len(events)
    assert list(read_event_log(path)) == events
    assert detect_format(path) == "event-log"


def test_a_bad_row_names_the_problem(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame([{"type": "purchase", "event_id": "e1", "user_id": "u", "session_id": "s",
                   "ts": "2026-01-01T00:00:00Z", "item_id": "p", "price": "-5"}]).to_csv(path, index=False)
    with pytest.raises(EventDecodeError, match="price"):
        list(read_event_log(path))
