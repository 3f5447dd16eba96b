"""The collector honours its own OpenAPI spec for any input schemathesis generates (Kafka replaced by a list)."""

from __future__ import annotations

import json
import time

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from producers.collector.app import create_app
from producers.collector.ingest import EventTimePolicy
from producers.collector.settings import CollectorSettings
from streamrec.events import EventDecodeError, event_from_dict
from streamrec.settings import Settings


class RecordingSink:
    def __init__(self) -> None:
        self.events: list = []

    def deliver(self, events) -> None:
        self.events.extend(events)

    def close(self) -> None:
        pass


SINK = RecordingSink()
SETTINGS = Settings()
APP = create_app(SETTINGS, CollectorSettings(api_keys={"shop": "contract-key"}, demo_enabled=False), SINK)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def _refused_for_its_time(case, response) -> bool:
    """True for a 422 on `ts` that the event-time policy really demands (it depends on the server's clock,
    which JSON Schema cannot express, so schema-valid events may meet it: the spec's `ts` describes it)."""
    if case.path != "/v1/events" or response.status_code != 422:
        return False
    refusal = response.json()
    if (refusal.get("error"), refusal.get("field")) != ("invalid_event_time", "ts"):
        return False
    body = json.loads(case.body) if isinstance(case.body, str | bytes) else case.body
    items = body["events"] if isinstance(body, dict) and "events" in body else body
    event = event_from_dict((items if isinstance(items, list) else [items])[refusal["index"]])
    try:
        EventTimePolicy.from_settings(SETTINGS).check(event, int(time.time() * 1000))
    except EventDecodeError:
        return True
    return False


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_response_matches_the_spec(case):
    """Status codes, content types and bodies are the documented ones; valid events are accepted (202)."""
    delivered_before = len(SINK.events)
    response = case.call(headers={"X-API-Key": "contract-key"})
    excluded = [positive_data_acceptance] if _refused_for_its_time(case, response) else []
    case.validate_response(response, excluded_checks=excluded)
    if case.path == "/v1/events" and response.status_code == 202:
        body = response.json()
        assert len(SINK.events) - delivered_before == body["accepted"]
        assert [e.event_id for e in SINK.events[delivered_before:]] == body["event_ids"]
