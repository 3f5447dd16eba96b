"""Retraining inside a replay: when it is owed, and that each retrain reads only its sliding window of the past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from consumers.replay.retraining import Retraining
from model.interactions import events_to_frame
from streamrec.events import PageView

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def _view(minute: int) -> PageView:
    return PageView(event_id=f"e{minute}", user_id="u", session_id="s", item_id=f"i{minute}",
                    ts=T0 + timedelta(minutes=minute))


def _ms(minute: int) -> int:
    return int((T0 + timedelta(minutes=minute)).timestamp() * 1000)


def test_each_retrain_reads_the_window_before_it_and_the_cadence_moves_on():
    seen: list[pd.DataFrame] = []

    def build(frame, running):
        seen.append(frame)
        return running

    before = events_to_frame([_view(m) for m in range(-90, 0, 10)])  # warm-up: -90 .. -10 minutes
    retraining = Retraining(every_ms=30 * 60_000, window_ms=60 * 60_000, before=before, build=build)
    assert not retraining.due(_ms(0))  # nothing replayed yet
    retraining.observe([_view(0), _view(10)])
    assert not retraining.due(_ms(20)) and retraining.due(_ms(30))
    retraining.observe([_view(30), _view(40)])  # observed before the retrain is asked: must not leak into it
    retraining.retrain(_ms(30), running=None)
    assert sorted(seen[0]["item_id"]) == sorted(f"i{m}" for m in (-30, -20, -10, 0, 10))  # [now - 60, now)
    assert not retraining.due(_ms(45)) and retraining.due(_ms(60))
    retraining.retrain(_ms(100), running=None)  # a long gap: one retrain, and the next one a cadence later
    assert sorted(seen[1]["item_id"]) == ["i40"]
    assert not retraining.due(_ms(110)) and retraining.due(_ms(120))
    assert [r.training_events for r in retraining.done] == [5, 1]
