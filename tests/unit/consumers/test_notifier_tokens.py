"""Push-stream tokens: only a token minted with the secret, for exactly this user and unexpired, opens a stream."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.notifier.tokens import TokenError, mint_user_token, verify_user_token

SECRET = "s3cret"
NOW = 1_800_000_000.0


@settings(max_examples=100, deadline=None)
@given(user=st.text(min_size=1, max_size=128))
def test_a_minted_token_opens_its_own_users_stream(user):
    verify_user_token(SECRET, mint_user_token(SECRET, user, 60, now=NOW), user, now=NOW + 30)


def test_a_token_for_another_user_is_forbidden():
    token = mint_user_token(SECRET, "alice", 60, now=NOW)
    with pytest.raises(TokenError) as caught:
        verify_user_token(SECRET, token, "bob", now=NOW)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: mint_user_token("guessed", "alice", 60, now=NOW),  # signed with the wrong secret
        lambda t: t.replace(t.split(".")[1], "Ym9i"),  # user swapped to bob, signature kept
        lambda t: ".".join([*t.split(".")[:2], str(int(NOW) + 10**6), t.split(".")[3]]),  # expiry extended
        lambda t: t[:-10] + ("A" if t[-10] != "A" else "B") + t[-9:],  # one signature character changed
        lambda t: "v2" + t[2:],
        lambda t: "not-a-token",
        lambda t: "",
    ],
)
def test_forged_or_malformed_tokens_are_unauthorised(forge):
    token = mint_user_token(SECRET, "alice", 60, now=NOW)
    for user in ("alice", "bob"):
        with pytest.raises(TokenError) as caught:
            verify_user_token(SECRET, forge(token), user, now=NOW)
        assert caught.value.status == 401


def test_an_expired_token_is_unauthorised():
    token = mint_user_token(SECRET, "alice", 60, now=NOW)
    with pytest.raises(TokenError, match="expired"):
        verify_user_token(SECRET, token, "alice", now=NOW + 61)


@settings(max_examples=200, deadline=None)
@given(garbage=st.text(max_size=200))
def test_arbitrary_strings_never_verify_and_never_crash(garbage):
    with pytest.raises(TokenError):
        verify_user_token(SECRET, garbage, "alice", now=NOW)


@pytest.mark.parametrize("expiry", ["²", "١٨٠٠٠٠٠٠٠٠", "9" * 5000, "9" * 13, "", "+1800000060", " 1800000060"])
def test_an_expiry_that_is_not_1_to_12_ascii_digits_is_malformed_not_a_crash(expiry):
    token = mint_user_token(SECRET, "alice", 60, now=NOW)
    forged = ".".join([*token.split(".")[:2], expiry, token.split(".")[3]])
    with pytest.raises(TokenError, match="malformed") as caught:
        verify_user_token(SECRET, forged, "alice", now=NOW)
    assert caught.value.status == 401


def test_verifying_returns_the_expiry_so_a_stream_can_end_with_its_token():
    token = mint_user_token(SECRET, "alice", 60, now=NOW)
    assert verify_user_token(SECRET, token, "alice", now=NOW) == int(NOW) + 60
