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

ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_categories=("Cc",)),
              min_size=1, max_size=40)
free_text = st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")) | st.just("\t"), max_size=20)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
events = st.one_of(
    st.builds(PageView, user_id=ids, session_id=ids, ts=times, item_id=st.none() | ids,
              price=st.none() | st.floats(0, 1e6), category=st.none() | free_text),
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


def _nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize("depth", [1000, 5000, 100_000])
@pytest.mark.parametrize("where", ["body", "field", "object"])
def test_deeply_nested_json_is_a_decode_error_not_a_crash(depth, where):
    if where == "body":
        raw = _nested(depth)
    elif where == "field":
        raw = '{"type": "page_view", "user_id": "u", "session_id": "s", "page": ' + _nested(depth) + "}"
    else:
        raw = '{"a": ' * depth + "1" + "}" * depth
    with pytest.raises(EventDecodeError, match="nesting too deep"):
        parse_event(raw.encode())


def _purchase_payload(**changes):
    payload = json.loads(encode_event(Purchase(user_id="u1", session_id="s1", item_id="p1", price=9.5, quantity=2)))
    payload.update(changes)
    return json.dumps(payload).encode()


def _purchase_with_literal(field: str, literal: str) -> bytes:
    """A purchase whose `field` is the raw JSON text `literal` (which `json.dumps` could not write)."""
    return _purchase_payload(**{field: "@LITERAL@"}).replace(b'"@LITERAL@"', literal.encode())


@pytest.mark.parametrize("digits", [21, 25, 4301, 50_000])
@pytest.mark.parametrize("field", ["quantity", "price", "ts", "schema_version"])
def test_integers_of_more_than_20_digits_are_refused_naming_the_field(digits, field):
    with pytest.raises(EventDecodeError) as caught:
        parse_event(_purchase_with_literal(field, "9" * digits))
    assert caught.value.field == field
    assert "number too large" in caught.value.reason and field in caught.value.reason


def test_a_huge_integer_as_the_whole_record_is_refused():
    with pytest.raises(EventDecodeError, match="number too large"):
        parse_event(b"1" * 5000)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_not_json(literal):
    with pytest.raises(EventDecodeError) as caught:
        parse_event(_purchase_with_literal("price", literal))
    assert caught.value.field == "price"
    assert literal in caught.value.reason and "not JSON" in caught.value.reason
    with pytest.raises(EventDecodeError, match="not JSON"):
        parse_event(literal.encode())


@pytest.mark.parametrize(
    ("field", "text"),
    [("price", "1e309"), ("price", "-1e309"), ("price", "1e10"), ("price", "1000000000.5"), ("price", "-0.01"),
     ("quantity", "0"), ("quantity", "1000001"), ("quantity", "9223372036854775808"), ("quantity", "2.5")],
)
def test_price_and_quantity_are_finite_and_bounded(field, text):
    with pytest.raises(EventDecodeError) as caught:
        parse_event(_purchase_with_literal(field, text))
    assert caught.value.field == field


def test_integral_floats_are_integers_and_bounds_are_inclusive():
    event = parse_event(_purchase_payload(quantity=835.0, price=1e9))
    assert event.quantity == 835 and type(event.quantity) is int
    assert parse_event(_purchase_payload(quantity=1_000_000, price=0)).quantity == 1_000_000


ID_FIELDS = ["event_id", "user_id", "session_id", "item_id"]
CONTROLS = ["\x00", "\r", "\n", "\t", "\x1b", "\x7f", "\x85", "\x9f"]


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("field", ID_FIELDS)
def test_ids_refuse_control_characters(field, control):
    with pytest.raises(EventDecodeError) as caught:
        parse_event(_purchase_payload(**{field: f"a{control}b"}))
    assert caught.value.field == field


def test_tool_ids_refuse_control_characters():
    payload = json.loads(encode_event(TaskCompleted(user_id="u", session_id="s", tool_id="t")))
    with pytest.raises(EventDecodeError) as caught:
        parse_event(json.dumps({**payload, "tool_id": "t\x00"}).encode())
    assert caught.value.field == "tool_id"


@pytest.mark.parametrize("control", [c for c in CONTROLS if c != "\t"])
@pytest.mark.parametrize("field", ["page", "category", "brand"])
def test_free_text_refuses_control_characters_but_a_tab(field, control):
    with pytest.raises(EventDecodeError) as caught:
        parse_event(_page_view_payload(**{field: f"a{control}b"}))
    assert caught.value.field == field
    assert getattr(parse_event(_page_view_payload(**{field: "a\tb ünï €"})), field) == "a\tb ünï €"


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_times_outside_the_utc_range_are_refused_naming_ts(ts):
    with pytest.raises(EventDecodeError) as caught:
        parse_event(_page_view_payload(ts=ts))
    assert caught.value.field == "ts"


def test_the_published_json_schema_carries_the_same_bounds():
    from pydantic import TypeAdapter

    from streamrec.events import Event

    defs = TypeAdapter(Event).json_schema()["$defs"]
    purchase = defs["Purchase"]["properties"]
    assert purchase["quantity"]["maximum"] == 1_000_000 and purchase["quantity"]["minimum"] == 1
    price = next(s for s in purchase["price"]["anyOf"] if s.get("type") == "number")
    assert (price["minimum"], price["maximum"]) == (0, 1e9)
    assert purchase["user_id"]["pattern"] and purchase["item_id"]["pattern"]
    import re

    id_pattern = re.compile(purchase["user_id"]["pattern"])
    assert id_pattern.search("user-1 ü") and not id_pattern.search("a\x00b") and not id_pattern.search("a\x85")
    brand = next(s for s in purchase["brand"]["anyOf"] if s.get("type") == "string")
    assert re.search(brand["pattern"], "a\tb") and not re.search(brand["pattern"], "a\x00b")


@pytest.mark.parametrize(("changes", "fragment"), [({"type": None}, "must be a string"), ({"type": [[1]]}, "string")])
def test_a_type_that_is_not_a_string_is_named_without_echoing_it(changes, fragment):
    with pytest.raises(EventDecodeError) as caught:
        parse_event(_page_view_payload(**changes))
    assert (caught.value.field, fragment in caught.value.reason) == ("type", True)
    missing = {k: v for k, v in json.loads(_page_view_payload()).items() if k != "type"}
    with pytest.raises(EventDecodeError, match="type: missing"):
        parse_event(json.dumps(missing).encode())
