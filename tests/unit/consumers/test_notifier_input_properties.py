"""Outside input to the push stream (tokens, Last-Event-ID) fails cleanly: a TokenError or a 400, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.notifier.push_stream import MAX_ID_PART, parse_stream_id
from consumers.notifier.tokens import TokenError, mint_user_token, verify_user_token

SECRET = "s3cret"
NOW = 1_800_000_000.0
ASCII_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=22)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0-0", "0-0"), ("1526919030474-55", "1526919030474-55"), ("007-01", "7-1"),
     (f"{MAX_ID_PART}-{MAX_ID_PART}", f"{MAX_ID_PART}-{MAX_ID_PART}")],
)
def test_a_redis_stream_id_is_accepted_and_normalised(text, expected):
    assert parse_stream_id(text) == expected


@pytest.mark.parametrize(
    "text",
    ["99999999999999999999-0", f"{MAX_ID_PART + 1}-0", f"0-{MAX_ID_PART + 1}", "١٢٣-٠", "１-１", "²-0", "1", "1-",
     "-1", "1-2-3", " 1-2", "1-2\n", "1_0-0", "+1-0", "x; DROP", "", "0" * 30 + "1-0"],
)
def test_anything_but_two_unsigned_64_bit_ascii_integers_is_refused(text):
    with pytest.raises(ValueError, match="Last-Event-ID"):
        parse_stream_id(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60) | st.builds(lambda a, b: f"{a}-{b}", ASCII_DIGITS, ASCII_DIGITS))
def test_the_cursor_parser_only_ever_returns_an_in_range_id_or_refuses(text):
    try:
        parsed = parse_stream_id(text)
    except ValueError:
        return
    ms, seq = parsed.split("-")
    assert 0 <= int(ms) <= MAX_ID_PART and 0 <= int(seq) <= MAX_ID_PART
    assert parsed == f"{int(ms)}-{int(seq)}"


def token_like(parts: list[str]) -> str:
    return ".".join(parts)


@settings(max_examples=300, deadline=None)
@given(
    token=st.text(max_size=300)
    | st.builds(token_like, st.lists(st.text(max_size=40), min_size=4, max_size=4))
    | st.builds(lambda exp, sig: f"v1.YWxpY2U.{exp}.{sig}", st.text(max_size=5000), st.text(max_size=60)),
    user=st.text(min_size=1, max_size=40),
)
def test_the_token_parser_raises_nothing_but_token_error(token, user):
    try:
        verify_user_token(SECRET, token, user, now=NOW)
    except TokenError as error:
        assert error.status in (401, 403)


@settings(max_examples=100, deadline=None)
@given(expiry=st.text(max_size=30))
def test_a_valid_signature_over_any_expiry_text_still_needs_a_well_formed_expiry(expiry):
    token = mint_user_token(SECRET, "alice", 60, now=NOW)
    head, user_part, _, sig = token.split(".")
    try:
        expires_at = verify_user_token(SECRET, f"{head}.{user_part}.{expiry}.{sig}", "alice", now=NOW)
    except TokenError:
        return
    assert expiry == str(int(NOW) + 60) and expires_at == int(NOW) + 60
