"""A streamed replay input outlines and splits its events exactly as the in-memory one does: same window cut
(ties at the cut included), same training frame, same events.parquet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from consumers.replay.sources import split_at
from consumers.replay.topic_input import TopicReplayInput
from model.datasets.event_log import write_event_log
from model.interactions import events_to_frame
from producers.simulator import simulate
from streamrec.events import AddToCart, PageView, TaskCompleted
from streamrec.settings import Settings

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class ListedTopic(TopicReplayInput):
    """A topic input whose every pass reads `events` (already in merge order) instead of a broker."""

    def __init__(self, events: list, since=None, until=None, warmup_share: float = 0.5) -> None:
        super().__init__(Settings(), "t", since, until, warmup_share)
        self.events = events

    def _read(self, desc, progress, total=None):
        self._ends = self._ends or {0: len(self.events)}
        yield from (e for e in self.events if self.until is None or e.ts < self.until)


def _passes(data) -> tuple[list[str], list[str]]:
    with data.replay_pass() as one_pass:
        return [e.event_id for e in one_pass.warmup()], [e.event_id for e in one_pass.window()]


def _kinds(n: int, seconds: list[int]) -> list:
    makers = [lambda **kw: PageView(item_id="p", price=2.5, **kw), lambda **kw: TaskCompleted(tool_id="t", **kw),
              lambda **kw: AddToCart(item_id="c", **kw)]
    return [makers[(n + i) % 3](event_id=f"e{i}", user_id=f"u{i % 4}", session_id="s",
                                ts=T0 + timedelta(seconds=s)) for i, s in enumerate(seconds)]


@hyp_settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=40), st.floats(0, 1), st.integers(0, 2))
def test_the_window_is_cut_after_the_warmup_share_as_split_at_cuts_it(gaps, share, variant):
    seconds = [sum(gaps[: i + 1]) for i in range(len(gaps))]  # sorted, with runs of equal times
    events = _kinds(variant, seconds)
    expected = split_at(events, "t", None, None, share)
    streamed = ListedTopic(events, warmup_share=share)
    outline, frame = streamed.outline()
    assert outline == expected.outline()[0]
    pd.testing.assert_frame_equal(frame, events_to_frame(expected.warmup))
    assert _passes(streamed) == _passes(expected)


def test_with_since_and_until_the_passes_match_the_in_memory_split(tmp_path):
    _, events = simulate(2000, seed=3)
    since, until = events[700].ts, events[1600].ts
    expected = split_at(events, "t", since, until)
    streamed = ListedTopic(events, since, until)
    outline, frame = streamed.outline(tmp_path / "streamed.parquet")
    expected_outline, expected_frame = expected.outline(tmp_path / "listed.parquet")
    assert outline == expected_outline and outline.window_start == expected.window_start
    pd.testing.assert_frame_equal(frame, expected_frame)
    pd.testing.assert_frame_equal(frame, events_to_frame(expected.warmup))
    assert _passes(streamed) == _passes(expected) == ([e.event_id for e in expected.warmup],
                                                      [e.event_id for e in expected.window])
    # events.parquet holds the same rows, in the same order, as the log writer has always written
    write_event_log([*expected.warmup, *expected.window], tmp_path / "whole.parquet")
    whole = pd.read_parquet(tmp_path / "whole.parquet").drop(columns="referrer")
    written = pd.read_parquet(tmp_path / "streamed.parquet").drop(columns="referrer")
    pd.testing.assert_frame_equal(written, whole)
