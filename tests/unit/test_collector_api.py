"""The collector's HTTP behaviour a frontend developer relies on: auth, limits, named errors, 503, CORS, metrics."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.collector.app import create_app
from producers.collector.ingest import IngestError, parse_events
from producers.collector.kafka_sink import BrokerUnavailable
from producers.collector.settings import CollectorSettings
from streamrec.settings import Settings

KEY = {"X-API-Key": "shop-key"}
ORIGIN = "http://shop.test"


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
    response = client.post("/v1/events", content=b'{"type": "page_view",', headers=KEY)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


def test_broker_unavailable_is_503_with_retry_after_and_recovers(client, sink):
    sink.down = True
    response = client.post("/v1/events", json=page_view(), headers=KEY)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
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
