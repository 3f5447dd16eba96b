"""Event parsing at the boundary: valid events round-trip; anything else fails naming what is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.events import (
    AddToCart,
    EventDecodeError,
    PageView,
    Purchase,
    TaskCompleted,
    encode_event,
    parse_event,
)

ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=40)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
events = st.one_of(
    st.builds(PageView, user_id=ids, session_id=ids, ts=times, item_id=st.none() | ids,
              price=st.none() | st.floats(0, 1e6), category=st.none() | st.text(max_size=20)),
    st.builds(TaskCompleted, user_id=ids, session_id=ids, ts=times, tool_id=ids),
    st.builds(AddToCart, user_id=ids, session_id=ids, ts=times, item_id=ids, quantity=st.integers(1, 99)),
    st.builds(Purchase, user_id=ids, session_id=ids, ts=times, item_id=ids, price=st.none() | st.floats(0, 1e6)),
)


@given(events)
def test_every_valid_event_round_trips_through_the_wire_format(event):
    assert parse_event(encode_event(event)) == event


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_arbitrary_bytes_never_crash_the_parser_with_anything_but_a_decode_error(raw):
    try:
        parse_event(raw)
    except EventDecodeError as error:
        assert error.reason


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=10)), max_size=6))
def test_arbitrary_json_objects_fail_with_a_reason(payload):
    try:
        parse_event(json.dumps(payload).encode())
    except EventDecodeError as error:
        assert error.reason


def _page_view_payload(**changes):
    payload = json.loads(encode_event(PageView(user_id="u1", session_id="s1", item_id="p1", price=9.5)))
    payload.update(changes)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (_page_view_payload(type="teleport"), "unknown event type 'teleport'"),
        (_page_view_payload(price=-3), "price"),
        (_page_view_payload(user_id=""), "user_id"),
        (_page_view_payload(surprise=1), "surprise"),
        (_page_view_payload(schema_version=9), "schema_version"),
        (None, "tombstone"),
    ],
)
def test_invalid_events_name_the_problem(raw, fragment):
    with pytest.raises(EventDecodeError) as caught:
        parse_event(raw)
    assert fragment in caught.value.reason


def test_payload_limit_is_checked_before_parsing():
    with pytest.raises(EventDecodeError, match="payload too large"):
        parse_event(_page_view_payload(page="x" * 5000), max_bytes=1000)


def test_naive_timestamps_are_taken_as_utc():
    event = parse_event(_page_view_payload(ts="2026-03-01T10:00:00"))
    assert event.ts == datetime(2026, 3, 1, 10, tzinfo=UTC)
