"""The training frame built a chunk at a time is the frame `events_to_frame` gives for all the events at once,
column types included (a chunk lacking prices or tools must not change a column's type)."""

from __future__ import annotations

import pandas as pd
import pytest

from consumers.replay.training_frame import TrainingFrameBuilder
from model.interactions import events_to_frame
from producers.simulator import simulate

_, EVENTS = simulate(3000, seed=9)
VIEWS = [e for e in EVENTS if e.type == "page_view"]
TASKS = [e for e in EVENTS if e.type == "task_completed"]
OTHER = [e for e in EVENTS if e.type not in ("page_view", "task_completed")]


@pytest.mark.parametrize("events", [EVENTS, TASKS[:50] + VIEWS[:50], VIEWS[:40] + TASKS[:40] + OTHER[:30], TASKS[:5],
                                    OTHER[:100] + EVENTS, []], ids=["sim", "tasks-then-views", "mixed", "few", "other",
                                                                    "none"])
@pytest.mark.parametrize("chunk", [1, 7, 50, 10_000])
def test_chunks_give_the_frame_of_all_the_events(events, chunk):
    builder = TrainingFrameBuilder(chunk)
    for event in events:
        builder.add(event)
    assert builder.rows == len(events)
    pd.testing.assert_frame_equal(builder.frame(), events_to_frame(events))


def test_the_frame_is_taken_once():
    builder = TrainingFrameBuilder(2)
    for event in EVENTS[:5]:
        builder.add(event)
    builder.frame()
    with pytest.raises(RuntimeError):
        builder.frame()
