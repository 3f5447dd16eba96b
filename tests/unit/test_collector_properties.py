"""Whatever a client sends, the collector answers with a documented status and a JSON error, never a 5xx
(except the documented 503 while the broker is down)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from producers.collector.app import create_app
from producers.collector.kafka_sink import BrokerUnavailable
from producers.collector.settings import CollectorSettings
from streamrec.settings import Settings


class FakeSink:
    def __init__(self) -> None:
        self.events: list = []
        self.down = False
        self.last_error: str | None = None

    def deliver(self, events) -> None:
        if self.down:
            self.last_error = "broker down"
            raise BrokerUnavailable("no broker")
        self.last_error = None
        self.events.extend(events)

    def close(self) -> None:
        pass


SINK = FakeSink()
# raise_server_exceptions=False: a crash must show up as the 500 a client would see, not as a test error.
CLIENT = TestClient(
    create_app(Settings(), CollectorSettings(api_keys={"shop": "shop-key"}, max_body_bytes=65536), SINK),
    raise_server_exceptions=False,
)
DOCUMENTED = {202, 400, 401, 413, 415, 422}

controls = st.sampled_from(["\x00", "\r", "\n", "\t", "\x7f", "\x85", "\ud800", "\udfff", "\u2028"])
text = st.text(alphabet=st.characters() | controls, max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.integers().map(lambda n: n * 10**50)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text
)
json_values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4), max_leaves=20
)
FIELDS = [
    "type",
    "user_id",
    "session_id",
    "event_id",
    "item_id",
    "tool_id",
    "ts",
    "price",
    "quantity",
    "page",
    "category",
    "brand",
    "task",
    "referrer",
    "device",
    "schema_version",
]
near_events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["page_view", "session_start", "session_end", "task_completed", "add_to_cart", "purchase", "wishlist"]
        ),
        "user_id": st.just("u1") | text,
        "session_id": st.just("s1"),
    },
    optional={name: json_values for name in FIELDS if name not in {"type", "user_id", "session_id"}},
)
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
