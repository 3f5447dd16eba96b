"""The request body of `POST /v1/events` as an OpenAPI schema, built from the event models themselves.

The route reads the raw body (to enforce the size limit before parsing and to name the bad event's index),
so FastAPI cannot infer the schema: it is declared here from the same pydantic types that validate.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from streamrec.events import Event

REF_TEMPLATE = "#/components/schemas/{model}"


def event_body_schema(max_events: int, max_future_skew_ms: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request body schema, component schemas it refers to)."""
    schema = TypeAdapter(Event).json_schema(ref_template=REF_TEMPLATE, mode="validation")
    components: dict[str, Any] = schema.pop("$defs", {})
    # The time policy depends on the server's clock, which JSON Schema cannot express: it is described.
    ts_policy = (
        f"Event time; refused (422, field `ts`) when more than {max_future_skew_ms / 1000:.0f} s ahead of the "
        "collector's clock or before the earliest accepted time (2000-01-01 UTC by default)"
    )
    for model in components.values():
        properties = model.get("properties", {})
        # `type` has a default in Python, but on the wire it is how the collector tells events apart.
        if "type" in properties:
            model["required"] = sorted({*model.get("required", []), "type"})
        if "ts" in properties:
            properties["ts"]["description"] = ts_policy
    components["Event"] = schema
    event_ref = {"$ref": REF_TEMPLATE.format(model="Event")}
    components["EventBatch"] = {
        "title": "EventBatch",
        "type": "object",
        "properties": {"events": {"type": "array", "items": event_ref, "minItems": 1, "maxItems": max_events}},
        "required": ["events"],
        "additionalProperties": False,
    }
    body = {"oneOf": [event_ref, {"$ref": REF_TEMPLATE.format(model="EventBatch")}]}
    return body, components


ERROR_SCHEMA: dict[str, Any] = {
    "title": "IngestError",
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "Machine-readable reason (the metric label)"},
        "message": {"type": "string"},
        "index": {"type": "integer", "description": "Position of the first bad event in the batch"},
        "field": {"type": "string", "description": "The offending field of that event"},
    },
    "required": ["error", "message"],
}

HEALTH_SCHEMA: dict[str, Any] = {
    "title": "Health",
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "failing"]},
        "broker": {"type": "string", "enum": ["ok", "unavailable"]},
        "last_error": {"type": ["string", "null"], "description": "Why the last produce failed, if it did"},
    },
    "required": ["status", "broker", "last_error"],
}

ACCEPTED_SCHEMA: dict[str, Any] = {
    "title": "Accepted",
    "type": "object",
    "properties": {
        "accepted": {"type": "integer", "minimum": 1},
        "event_ids": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["accepted", "event_ids"],
}
