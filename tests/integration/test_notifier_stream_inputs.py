"""The push stream's outside input on real Redis: a token's expiry ends its stream, and no token or
Last-Event-ID string, however odd, gets a 5xx."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consumers.notifier.app import create_app
from consumers.notifier.push_stream import MAX_ID_PART
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.tokens import mint_user_token
from streamrec.settings import Settings
from tests.web_helpers import read_sse, serve

pytestmark = pytest.mark.integration
SECRET = "stream-input-secret"


def options(**overrides: object) -> NotifierSettings:
    return NotifierSettings(token_secret=SECRET, heartbeat_s=0.5, **overrides)


def test_an_open_stream_ends_when_its_token_expires(settings):
    app = create_app(settings, options(), consume=False)
    user = f"u-{uuid.uuid4().hex[:6]}"
    token = mint_user_token(SECRET, user, 2)  # whole seconds: expires 1-2 s from now
    with serve(app) as base:
        started = time.monotonic()
        status, events = read_sse(f"{base}/v1/users/{user}/notifications/stream?token={token}", count=99,
                                  timeout_s=15)
        lasted = time.monotonic() - started
    assert status == 200
    assert [e.event for e in events] == ["token-expired"]
    assert events[0].id is None  # the browser keeps its Last-Event-ID for the stream it opens with a new token
    assert lasted < 4


@pytest.mark.parametrize("resume", ["99999999999999999999-0", f"{MAX_ID_PART + 1}-0", "١٢٣-٠", "1-2-3"])
def test_a_last_event_id_redis_would_refuse_is_a_400_not_a_reconnect_loop(settings, resume):
    app = create_app(settings, options(), consume=False)
    user = f"u-{uuid.uuid4().hex[:6]}"
    url = f"/v1/users/{user}/notifications/stream"
    with TestClient(app) as client:
        token = mint_user_token(SECRET, user, 300)
        assert client.get(url, params={"token": token, "last_event_id": resume}).status_code == 400
        header = client.get(url, params={"token": token}, headers={"Last-Event-ID": resume.encode()})
        assert header.status_code == 400
        assert "Last-Event-ID" in header.json()["error"]


def test_the_largest_stream_id_is_a_valid_resume_point(settings):
    app = create_app(settings, options(), consume=False)
    user = f"u-{uuid.uuid4().hex[:6]}"
    with serve(app) as base:
        status, events = read_sse(
            f"{base}/v1/users/{user}/notifications/stream?token={mint_user_token(SECRET, user, 300)}",
            count=1, timeout_s=1.5, headers={"Last-Event-ID": f"{MAX_ID_PART}-{MAX_ID_PART}"},
        )
    assert (status, events) == (200, [])


@pytest.fixture(scope="module")
def stream_client(redis_url: str) -> Iterator[TestClient]:
    """One app for all of hypothesis' examples; its streams end at once, since the answer's status is tested."""
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    app = create_app(Settings(redis_url=redis_url, key_prefix=prefix), options(), consume=False)
    with TestClient(app) as client:
        app.state.stopping.set()
        yield client
    store = redis.Redis.from_url(redis_url)
    for key in store.scan_iter(match=f"{prefix}*", count=1000):
        store.delete(key)


TEXT = st.text(max_size=80)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)


@hypothesis_settings(max_examples=300, deadline=None)
@given(token=TEXT, resume=TEXT, header_resume=HEADER_TEXT, valid_token=st.booleans(),
       digits=st.tuples(st.integers(0, 2**70), st.integers(0, 2**70)))
def test_no_token_or_last_event_id_string_gets_a_5xx(stream_client, token, resume, header_resume, valid_token,
                                                       digits):
    user = "prop-user"
    token = mint_user_token(SECRET, user, 300) if valid_token else token
    url = f"/v1/users/{user}/notifications/stream"
    tries = [({"token": token, "last_event_id": resume}, {}),
             ({"token": token}, {"Last-Event-ID": header_resume.encode("latin-1")} if header_resume else {}),
             ({"token": token, "last_event_id": f"{digits[0]}-{digits[1]}"}, {})]
    for params, headers in tries:
        answer = stream_client.get(url, params=params, headers=headers)
        assert answer.status_code < 500, (params, headers, answer.text)
