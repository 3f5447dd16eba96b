"""The collector's HTTP behaviour a frontend developer relies on: auth, limits, named errors, 503, CORS, metrics."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.collector.app import STATIC_DIR, create_app
from producers.collector.ingest import IngestError, parse_events
from producers.collector.settings import CollectorSettings
from streamrec.settings import Settings
from tests.fake_sink import FakeSink

KEY = {"X-API-Key": "shop-key"}
JSON = {**KEY, "Content-Type": "application/json"}
ORIGIN = "http://shop.test"


def page_view(i: int = 0, **extra: object) -> dict[str, object]:
    return {"type": "page_view", "user_id": f"u{i}", "session_id": "s1", "item_id": f"p{i}", **extra}


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def client(sink: FakeSink) -> TestClient:
    options = CollectorSettings(
        api_keys={"shop": "shop-key", "blog": "blog-key"}, cors_origins=[ORIGIN], max_body_bytes=4096,
        retry_after_s=7, demo_application="shop",
    )
    return TestClient(create_app(Settings(), options, sink))


@pytest.fixture
def roomy_client(sink: FakeSink) -> TestClient:
    """The default body limit (1 MiB): room for the hostile bodies of a fault run."""
    return TestClient(create_app(Settings(), CollectorSettings(api_keys={"shop": "shop-key"}), sink))


def metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_batch_is_accepted_only_after_the_sink_has_every_event(client, sink):
    response = client.post("/v1/events", json={"events": [page_view(i) for i in range(3)]}, headers=KEY)
    assert response.status_code == 202
    assert response.json()["accepted"] == 3
    assert [e.user_id for e in sink.events] == ["u0", "u1", "u2"]
    assert response.json()["event_ids"] == [e.event_id for e in sink.events]
    assert metric(client, 'streamrec_collector_events_accepted_total{application="shop",type="page_view"}') == 3
    assert metric(client, "streamrec_collector_produce_latency_seconds_count") == 1


def test_single_event_and_bare_array_bodies_are_accepted(client, sink):
    assert client.post("/v1/events", json=page_view(), headers=KEY).status_code == 202
    assert client.post("/v1/events", json=[page_view(1), page_view(2)], headers=KEY).status_code == 202
    assert len(sink.events) == 3


@pytest.mark.parametrize(
    ("headers", "params", "reason"),
    [({}, {}, "missing_api_key"), ({"X-API-Key": "nope"}, {}, "unknown_api_key"),
     ({}, {"api_key": "shop-ke"}, "unknown_api_key")],
)
def test_requests_without_a_valid_key_are_refused_and_nothing_is_sent(client, sink, headers, params, reason):
    response = client.post("/v1/events", json=page_view(), headers=headers, params=params)
    assert response.status_code == 401
    assert response.json()["error"] == reason
    assert sink.events == []
    assert metric(client, f'streamrec_collector_requests_rejected_total{{reason="{reason}"}}') == 1


def test_the_key_in_the_query_works_for_send_beacon_text_plain_bodies(client, sink):
    response = client.post(
        "/v1/events", params={"api_key": "blog-key"}, content=json.dumps({"events": [page_view()]}),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 202
    assert metric(client, 'streamrec_collector_events_accepted_total{application="blog",type="page_view"}') == 1


def test_oversize_bodies_get_413_whether_declared_or_streamed(client, sink):
    big = json.dumps({"events": [page_view(i, page="/" + "x" * 2000) for i in range(3)]}).encode()
    assert len(big) > 4096
    declared = client.post("/v1/events", content=big, headers={**KEY, "Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"] == "body_too_large"

    def chunks():  # no Content-Length: the limit must hold while reading
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    streamed = client.post("/v1/events", content=chunks(), headers={**KEY, "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert sink.events == []


def test_more_events_than_a_batch_may_hold_are_refused_whole(sink):
    client = TestClient(create_app(Settings(), CollectorSettings(api_keys={"shop": "shop-key"}), sink))
    assert client.post("/v1/events", json={"events": [page_view(i) for i in range(500)]}, headers=KEY).status_code \
        == 202
    response = client.post("/v1/events", json={"events": [page_view(i) for i in range(501)]}, headers=KEY)
    assert response.status_code == 422
    assert response.json()["error"] == "too_many_events"
    assert len(sink.events) == 500


def test_an_invalid_event_names_its_index_and_field_and_nothing_of_the_batch_is_sent(client, sink):
    batch = [page_view(0), page_view(1), {**page_view(2), "price": -3}]
    response = client.post("/v1/events", json={"events": batch}, headers=KEY)
    assert response.status_code == 422
    assert response.json()["index"] == 2
    assert response.json()["field"] == "price"
    assert "event 2" in response.json()["message"]
    assert sink.events == []


def test_malformed_json_is_400(client):
    response = client.post("/v1/events", content=b'{"type": "page_view",', headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


def test_broker_unavailable_is_503_with_retry_after_and_recovers(client, sink):
    sink.down = True
    response = client.post("/v1/events", json=page_view(), headers=KEY)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert client.get("/healthz").status_code == 503
    assert client.get("/healthz").json()["broker"] == "unavailable"
    sink.down = False
    assert client.post("/v1/events", json=page_view(), headers=KEY).status_code == 202
    assert client.get("/healthz").json()["broker"] == "ok"
    assert metric(client, 'streamrec_collector_requests_rejected_total{reason="broker_unavailable"}') == 1


def test_cors_lets_configured_origins_post_and_no_one_else(client):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key"}
    allowed = client.options("/v1/events", headers={"Origin": ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    refused = client.options("/v1/events", headers={"Origin": "http://evil.test", **preflight})
    assert "access-control-allow-origin" not in refused.headers
    posted = client.post("/v1/events", json=page_view(), headers={**KEY, "Origin": ORIGIN})
    assert posted.headers["access-control-allow-origin"] == ORIGIN


def test_the_snippet_the_demo_page_and_the_openapi_spec_are_served(client):
    snippet = client.get("/static/streamrec.js")
    assert snippet.status_code == 200
    assert "javascript" in snippet.headers["content-type"]
    assert "sendBeacon" in snippet.text and "EventSource" in snippet.text
    demo = client.get("/demo")
    assert demo.status_code == 200
    config = json.loads(demo.text.split("window.STREAMREC_DEMO = ", 1)[1].split(";</script>", 1)[0])
    assert config["apiKey"] == "shop-key"
    assert len(config["products"]) >= 8
    spec = client.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"]
    assert {"Event", "EventBatch", "PageView"} <= set(spec["components"]["schemas"])


VALID = {"type": "purchase", "user_id": "u", "session_id": "s", "item_id": "i", "price": 3.5, "quantity": 2}
BREAKAGES = [
    ("user_id", lambda e: {**e, "user_id": ""}),
    ("session_id", lambda e: {k: v for k, v in e.items() if k != "session_id"}),
    ("price", lambda e: {**e, "price": "3.5"}),
    ("quantity", lambda e: {**e, "quantity": 0}),
    ("colour", lambda e: {**e, "colour": "red"}),
    ("type", lambda e: {**e, "type": "wishlist"}),
    ("ts", lambda e: {**e, "ts": "yesterday"}),
]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 40), data=st.data())
def test_any_single_broken_field_is_reported_with_its_index_and_name(size, data):
    bad_index = data.draw(st.integers(0, size - 1))
    field, breakage = data.draw(st.sampled_from(BREAKAGES))
    batch = [VALID] * size
    batch[bad_index] = breakage(VALID)
    with pytest.raises(IngestError) as caught:
        parse_events(json.dumps({"events": batch}).encode(), max_events=500)
    assert caught.value.status == 422
    assert (caught.value.index, caught.value.field) == (bad_index, field)



def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        _deep(1000),
        '{"events": ' + _deep(1000) + "}",
        '{"events": [' + _deep(1000) + "]}",
        '{"type": "page_view", "user_id": "u", "session_id": "s", "page": ' + _deep(1000) + "}",
        "[" + _deep(5000) + "]",
        '{"a":' * 1000 + "1" + "}" * 1000,
    ],
)
def test_json_nested_too_deep_is_400_saying_why(roomy_client, sink, body):
    response = roomy_client.post("/v1/events", content=body, headers=JSON)
    assert response.status_code == 400
    assert "nesting too deep" in response.json()["message"]
    assert sink.events == []


def _with_literal(event: dict[str, object], field: str, literal: str) -> str:
    return json.dumps({**event, field: "@LITERAL@"}).replace('"@LITERAL@"', literal)


@pytest.mark.parametrize(
    ("field", "literal", "fragment"),
    [
        ("price", "Infinity", "not JSON"),
        ("price", "-Infinity", "not JSON"),
        ("price", "NaN", "not JSON"),
        ("price", "1e309", "finite"),
        ("price", "1e10", "price"),
        ("quantity", str(2**63), "quantity"),
        ("quantity", str(10**100), "number too large"),
        ("quantity", "9" * 5000, "number too large"),
        ("quantity", "835.5", "quantity"),
        ("ts", "9" * 5000, "number too large"),
    ],
)
def test_unacceptable_numbers_are_422_naming_index_and_field(roomy_client, sink, field, literal, fragment):
    body = "[" + json.dumps(VALID) + ", " + _with_literal(VALID, field, literal) + "]"
    response = roomy_client.post("/v1/events", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert (response.json()["index"], response.json()["field"]) == (1, field)
    assert fragment in response.json()["message"]
    assert sink.events == []


@pytest.mark.parametrize("field", ["user_id", "session_id", "item_id", "event_id"])
@pytest.mark.parametrize("control", ["\x00", "\r\n", "\n", "\x1b", "\x7f", "\x85"])
def test_control_characters_in_ids_are_422_naming_the_field(client, sink, field, control):
    response = client.post("/v1/events", json={"events": [{**VALID, field: f"a{control}b"}]}, headers=KEY)
    assert response.status_code == 422
    assert (response.json()["index"], response.json()["field"]) == (0, field)


def test_integral_float_quantities_are_integers(client, sink):
    response = client.post("/v1/events", json={**VALID, "quantity": 835.0}, headers=KEY)
    assert response.status_code == 202
    assert sink.events[0].quantity == 835
    refused = client.post("/v1/events", json={**VALID, "quantity": 835.5}, headers=KEY)
    assert (refused.status_code, refused.json()["field"]) == (422, "quantity")


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [], "\\udc00": 1}',
        b'{"type": "page_view", "user_id": "u", "session_id": "s", "\\ud800": 1}',
        b'{"type": "page_view", "user_id": "u", "session_id": "s", "\\ud800\\n\\u0000": 1}',
    ],
)
def test_lone_surrogates_in_keys_are_refused_without_a_500(client, body):
    response = client.post("/v1/events", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["error"] in {"invalid_batch", "invalid_event"}


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "text/plain;charset=UTF-8", "text/plain", "Application/JSON"])
def test_json_and_text_plain_content_types_are_accepted(client, sink, content_type):
    response = client.post("/v1/events", content=json.dumps(page_view()), headers={**KEY, "Content-Type": content_type})
    assert response.status_code == 202


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/xml", "text/html", "application/jsonx", ""])
def test_other_content_types_are_415_with_a_json_error(client, sink, content_type):
    headers = dict(KEY) if content_type is None else {**KEY, "Content-Type": content_type}
    response = client.post("/v1/events", content=json.dumps(page_view()), headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert sink.events == []
    assert "415" in client.get("/openapi.json").json()["paths"]["/v1/events"]["post"]["responses"]


def test_the_send_beacon_snippet_sends_a_content_type_the_collector_accepts():
    snippet = (STATIC_DIR / "streamrec.js").read_text()
    assert 'new Blob([JSON.stringify({events: chunk})], {type: "text/plain"})' in snippet
    assert '"Content-Type": "application/json"' in snippet


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1969-07-20T20:17:40Z"])
def test_event_times_outside_the_policy_are_422_naming_index_and_ts(client, sink, ts):
    batch = [page_view(0), page_view(1, ts=ts)]
    response = client.post("/v1/events", json={"events": batch}, headers=KEY)
    assert response.status_code == 422
    assert (response.json()["index"], response.json()["field"]) == (1, "ts")
    assert sink.events == []


def test_the_time_policy_follows_the_settings_and_the_server_clock(sink):
    from datetime import UTC, datetime, timedelta

    options = CollectorSettings(api_keys={"shop": "shop-key"})
    client = TestClient(create_app(Settings(event_max_future_skew_s=60), options, sink))
    now = datetime.now(UTC)
    soon, later = (now + timedelta(seconds=30)).isoformat(), (now + timedelta(seconds=600)).isoformat()
    assert client.post("/v1/events", json=page_view(ts=soon), headers=KEY).status_code == 202
    assert client.post("/v1/events", json=page_view(ts=later), headers=KEY).status_code == 422


def test_healthz_is_503_while_the_broker_is_failing_and_200_once_it_delivers(client, sink):
    assert client.get("/healthz").status_code == 200
    sink.down = True
    client.post("/v1/events", json=page_view(), headers=KEY)
    failing = client.get("/healthz")
    assert failing.status_code == 503
    assert failing.json() == {"status": "failing", "broker": "unavailable", "last_error": "broker down"}
    sink.down = False
    client.post("/v1/events", json=page_view(), headers=KEY)
    healthy = client.get("/healthz")
    assert (healthy.status_code, healthy.json()["status"], healthy.json()["broker"]) == (200, "ok", "ok")
