"""Whatever a client sends, the collector answers with a documented status and a JSON error, never a 5xx
(except the documented 503 while the broker is down)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from producers.collector.app import create_app
from producers.collector.settings import CollectorSettings
from streamrec.settings import Settings
from tests.fake_sink import FakeSink
from tests.hostile_json import hostile_text, json_values
from tests.hostile_json import near_events as hostile_near_events

SINK = FakeSink()
# raise_server_exceptions=False: a crash must show up as the 500 a client would see, not as a test error.
CLIENT = TestClient(
    create_app(Settings(), CollectorSettings(api_keys={"shop": "shop-key"}, max_body_bytes=65536), SINK),
    raise_server_exceptions=False,
)
DOCUMENTED = {202, 400, 401, 413, 415, 422}

near_events = hostile_near_events(st.just("u1") | hostile_text, extra_types=("wishlist",))
bodies = st.one_of(
    st.binary(max_size=500),
    json_values.map(json.dumps),
    near_events.map(json.dumps),
    st.lists(near_events, max_size=5).map(lambda events: json.dumps({"events": events})),
    st.tuples(st.integers(1, 5000), st.sampled_from(["[", '{"events":', '{"a":'])).map(lambda d: d[1] * d[0]),
).map(lambda body: body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain;charset=UTF-8",
        "text/plain; charset=utf-8",
        "application/xml",
        "multipart/form-data",
        "application/json; charset=latin-1",
        "",
    ]
) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)  # what HTTP carries


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, content_type=content_types, down=st.booleans())
@example(body=b"[" * 1000 + b"]" * 1000, content_type="application/json", down=False)
@example(
    body=b'{"type": "purchase", "user_id": "u", "session_id": "s", "item_id": "i", "quantity": ' + b"9" * 5000 + b"}",
    content_type="application/json",
    down=False,
)
def test_any_body_and_content_type_gets_a_documented_answer_never_a_5xx(body, content_type, down):
    SINK.down = down
    headers = {"X-API-Key": "shop-key"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = CLIENT.post("/v1/events", content=body, headers=headers)
    allowed = DOCUMENTED | ({503} if down else set())
    assert response.status_code in allowed, (response.status_code, response.text)
    payload = response.json()
    if response.status_code != 202:
        assert payload["error"] and payload["message"]
    health = CLIENT.get("/healthz")
    assert health.status_code in {200, 503}


@pytest.fixture(autouse=True)
def _broker_back_up():
    yield
    SINK.down = False
