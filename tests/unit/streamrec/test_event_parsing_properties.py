"""Whatever a producer writes to the topic, `parse_event` returns an event or raises `EventDecodeError`.

Anything else (RecursionError, ValueError, OverflowError ...) would kill the worker instead of dead-lettering
the record, so these properties feed it hostile bytes and hostile JSON.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streamrec.events import EventDecodeError, parse_event
from tests.hostile_json import FIELDS, json_values
from tests.hostile_json import near_events as hostile_near_events

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

near_events = hostile_near_events()


def _parses_or_refuses(raw: bytes) -> None:
    try:
        event = parse_event(raw)
    except EventDecodeError as error:
        assert error.reason
    else:
        assert event.user_id


@FAST
@given(st.binary(max_size=2000))
@example(b"1" * 5000)
@example(b"[" * 2000)
@example(b'{"type": "purchase", "price": NaN}')
def test_arbitrary_bytes_are_an_event_or_a_decode_error(raw):
    _parses_or_refuses(raw)


@FAST
@given(json_values | near_events)
def test_arbitrary_json_values_are_an_event_or_a_decode_error(value):
    # `json.dumps` writes NaN/Infinity and any size of integer: exactly the non-strict JSON to refuse.
    _parses_or_refuses(json.dumps(value).encode())


@FAST
@given(near_events, st.sampled_from(FIELDS), st.integers(1000, 100_000), st.sampled_from(["[", '{"k":']))
def test_deep_nesting_inside_any_field_is_a_decode_error(event, field, depth, opener):
    closer = "]" if opener == "[" else "}"
    raw = json.dumps({**event, field: "@DEEP@"}).replace('"@DEEP@"', opener * depth + "0" + closer * depth)
    # Hypothesis raises the recursion limit while it runs a test, so a depth near 1000 may decode: then the
    # schema refuses the nested value instead; either way it is a decode error.
    with pytest.raises(EventDecodeError):
        parse_event(raw.encode())


@pytest.mark.parametrize("depth", [1000, 3000, 10_000, 100_000])
@pytest.mark.parametrize("opener", ["[", '{"a":', '[{"b":'])
def test_hand_built_deep_payloads_are_a_decode_error(depth, opener):
    closer = "".join({"[": "]", "{": "}"}[c] for c in opener if c in "[{")[::-1]
    raw = (opener * depth + "null" + closer * depth).encode()
    with pytest.raises(EventDecodeError, match="nesting too deep"):
        parse_event(raw)


@FAST
@given(
    st.integers(min_value=10**20, max_value=10**4000) | st.integers(max_value=-(10**20), min_value=-(10**4000)),
    st.sampled_from(FIELDS),
)
def test_huge_integers_anywhere_are_a_decode_error_naming_the_field(number, field):
    raw = json.dumps({"type": "purchase", "user_id": "u", "session_id": "s", "item_id": "i", field: number})
    with pytest.raises(EventDecodeError) as caught:
        parse_event(raw.encode())
    assert field in caught.value.reason
