"""The collector honours its own OpenAPI spec for any input schemathesis generates (Kafka replaced by a list)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from producers.collector.app import create_app
from producers.collector.settings import CollectorSettings
from streamrec.settings import Settings


class RecordingSink:
    def __init__(self) -> None:
        self.events: list = []

    def deliver(self, events) -> None:
        self.events.extend(events)

    def close(self) -> None:
        pass


SINK = RecordingSink()
APP = create_app(Settings(), CollectorSettings(api_keys={"shop": "contract-key"}, demo_enabled=False), SINK)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_response_matches_the_spec(case):
    """Status codes, content types and bodies are the documented ones; valid events are accepted (202)."""
    delivered_before = len(SINK.events)
    response = case.call_and_validate(headers={"X-API-Key": "contract-key"})
    if case.path == "/v1/events" and response.status_code == 202:
        body = response.json()
        assert len(SINK.events) - delivered_before == body["accepted"]
        assert [e.event_id for e in SINK.events[delivered_before:]] == body["event_ids"]
