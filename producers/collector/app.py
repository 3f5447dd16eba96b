"""The collector's HTTP API: `POST /v1/events`, `/healthz`, `/metrics`, the JS snippet and the demo page."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, APIKeyQuery
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from producers.collector.demo_catalogue import DEMO_PRODUCTS
from producers.collector.ingest import EventTimePolicy, IngestError, parse_events
from producers.collector.kafka_sink import BrokerUnavailable, KafkaSink
from producers.collector.metrics import CONTENT_TYPE_LATEST, CollectorMetrics
from producers.collector.openapi_schema import ACCEPTED_SCHEMA, ERROR_SCHEMA, HEALTH_SCHEMA, event_body_schema
from producers.collector.settings import CollectorSettings
from streamrec.events import Event
from streamrec.settings import Settings

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
API_KEY_HEADER = "X-API-Key"
# `fetch` sends application/json; `navigator.sendBeacon` with a text Blob sends `text/plain;charset=UTF-8`.
ACCEPTED_MEDIA_TYPES = ("application/json", "text/plain")


class EventSink(Protocol):
    """Where accepted events go; `deliver` returns only once they are durable (else raises BrokerUnavailable)."""

    def deliver(self, events: Sequence[Event]) -> None: ...

    def close(self) -> None: ...


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes: a declared Content-Length over it is refused before reading anything."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _accepts_content_type(header: str | None) -> bool:
    """application/json or text/plain, in UTF-8 (the only charset JSON on the wire may use) or unstated."""
    if not header:
        return False
    media_type, _, parameters = header.partition(";")
    if media_type.strip().lower() not in ACCEPTED_MEDIA_TYPES:
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _error(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "message": message}, status_code=status, headers=headers)


def create_app(settings: Settings, collector: CollectorSettings, sink: EventSink | None = None) -> FastAPI:
    """The collector app; pass `sink` to replace Kafka (the contract tests do)."""
    metrics = CollectorMetrics()
    time_policy = EventTimePolicy.from_settings(settings)
    sink = sink or KafkaSink(settings, collector.produce_timeout_s, hold_off_s=collector.retry_after_s)
    app = _new_app(sink, metrics)
    _allow_cors(app, collector)
    body_schema, body_components = event_body_schema(collector.max_batch_events, time_policy.max_future_skew_ms)
    app.include_router(_ingest_router(collector, time_policy, sink, metrics, body_schema))
    app.include_router(_health_router(sink, metrics))
    if collector.demo_enabled:
        app.include_router(_demo_router(collector))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _document_event_schemas(app, body_components)
    return app


def _new_app(sink: EventSink, metrics: CollectorMetrics) -> FastAPI:
    """The bare app: its title and description, and a lifespan that closes the sink on shutdown."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(sink.close)

    app = FastAPI(
        title="streamrec collector",
        version="1",
        description="Frontends send behaviour events here; 202 means Kafka has them.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.sink = sink
    return app


def _allow_cors(app: FastAPI, collector: CollectorSettings) -> None:
    """Let the configured origins' pages post events (and read Retry-After); none by default."""
    if collector.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=collector.cors_origins,
            allow_methods=["POST", "GET", "OPTIONS"],
            allow_headers=["Content-Type", API_KEY_HEADER],
            expose_headers=["Retry-After"],
            max_age=600,
        )


def _error_doc(description: str, retry_after: bool = False) -> dict[str, object]:
    """The OpenAPI entry of one error answer (an `IngestError` body, and Retry-After where it applies)."""
    response: dict[str, object] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestError"}}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}}
    return response


def _ingest_responses() -> dict[int | str, dict[str, object]]:
    """Every answer `POST /v1/events` may give, as documented in the OpenAPI spec."""
    return {
        202: {"description": "Kafka acknowledged every event",
              "content": {"application/json": {"schema": ACCEPTED_SCHEMA}}},
        400: _error_doc("The body is not strict JSON (`message` says why: syntax, NaN, nesting too deep)"),
        401: _error_doc("Missing or unknown API key"),
        413: _error_doc("Body over the size limit"),
        415: _error_doc("Content-Type is not application/json or text/plain (charset UTF-8 if given)"),
        422: _error_doc(
            "An event is invalid (`index` and `field` say which and where; `ts` too far ahead of the server's"
            " clock or too old), or the batch is empty or too long"
        ),
        503: _error_doc("The broker did not acknowledge in time: nothing was accepted, retry", True),
    }


def _ingest_router(
    collector: CollectorSettings,
    time_policy: EventTimePolicy,
    sink: EventSink,
    metrics: CollectorMetrics,
    body_schema: dict[str, object],
) -> APIRouter:
    """`POST /v1/events`: key, media type, size, strict parsing, then 202 only once the sink has every event."""
    router = APIRouter()
    key_in_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The application's API key")
    # `navigator.sendBeacon` cannot set headers: the snippet's page-hide flush passes the key in the query.
    key_in_query = APIKeyQuery(name="api_key", auto_error=False, description="For sendBeacon, which sends no headers")

    @router.post(
        "/v1/events",
        status_code=202,
        summary="Send one event or a batch of events",
        responses=_ingest_responses(),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}, "text/plain": {"schema": body_schema}},
            }
        },
    )
    async def post_events(
        request: Request,
        header_key: str | None = Security(key_in_header),
        query_key: str | None = Security(key_in_query),
    ) -> Response:
        presented = header_key or query_key
        application = collector.application_for_key(presented) if presented else None
        if application is None:
            reason = "missing_api_key" if not presented else "unknown_api_key"
            metrics.rejected.labels(reason).inc()
            return _error(401, reason, f"send your application's key in the {API_KEY_HEADER} header")
        if not _accepts_content_type(request.headers.get("content-type")):
            metrics.rejected.labels("unsupported_media_type").inc()
            return _error(415, "unsupported_media_type",
                          "send the body as application/json or text/plain (UTF-8)")
        try:
            body = await _read_body(request, collector.max_body_bytes)
            events = parse_events(body, collector.max_batch_events, time_policy)
        except _BodyTooLarge:
            metrics.rejected.labels("body_too_large").inc()
            return _error(413, "body_too_large", f"the body limit is {collector.max_body_bytes} bytes")
        except IngestError as error:
            metrics.rejected.labels(error.reason).inc()
            return JSONResponse(error.detail(), status_code=error.status)
        started = time.perf_counter()
        try:
            await run_in_threadpool(sink.deliver, events)
        except BrokerUnavailable as error:
            metrics.rejected.labels("broker_unavailable").inc()
            return _error(503, "broker_unavailable", f"events not accepted, retry later ({error})",
                          {"Retry-After": str(collector.retry_after_s)})
        metrics.produce_latency.observe(time.perf_counter() - started)
        for event in events:
            metrics.accepted.labels(application, event.type).inc()
        return JSONResponse({"accepted": len(events), "event_ids": [e.event_id for e in events]}, status_code=202)

    return router


def _health_router(sink: EventSink, metrics: CollectorMetrics) -> APIRouter:
    """`/healthz` (can the collector accept events now?) and `/metrics` (Prometheus)."""
    router = APIRouter()

    @router.get(
        "/healthz",
        summary="Whether the collector can accept events: 503 while the last produce failed to reach the broker",
        response_class=JSONResponse,
        responses={
            200: {"description": "The last produce reached the broker (or none was tried yet)",
                  "content": {"application/json": {"schema": HEALTH_SCHEMA}}},
            503: {"description": "The last produce failed: POSTs get 503 until the broker is back",
                  "content": {"application/json": {"schema": HEALTH_SCHEMA}}},
        },
    )
    async def healthz() -> JSONResponse:
        # Read, not cached: the sink keeps `last_error` truthful (cleared by the next successful delivery).
        last_error = getattr(sink, "last_error", None)
        if last_error:
            return JSONResponse({"status": "failing", "broker": "unavailable", "last_error": str(last_error)},
                                status_code=503)
        return JSONResponse({"status": "ok", "broker": "ok", "last_error": None})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


def _demo_router(collector: CollectorSettings) -> APIRouter:
    """`/demo`: the demo shop page, configured with the demo application's key and the notifier's URL."""
    router = APIRouter()
    demo_key = collector.api_keys.get(collector.demo_application)
    page_template = (STATIC_DIR / "demo.html").read_text()

    @router.get("/demo", response_class=HTMLResponse, summary="The demo shop page", include_in_schema=False)
    async def demo_page() -> HTMLResponse:
        config = {
            "endpoint": "/v1/events",
            "apiKey": demo_key.get_secret_value() if demo_key else "",
            "pushUrl": collector.notifier_public_url.rstrip("/"),
            "products": [p.model_dump() for p in DEMO_PRODUCTS],
        }
        blob = json.dumps(config).replace("</", "<\\/")  # a JSON string inside <script> must not close it
        return HTMLResponse(page_template.replace("__STREAMREC_DEMO_CONFIG__", blob))

    return router


def _document_event_schemas(app: FastAPI, body_components: dict[str, object]) -> None:
    """Add the event body's schemas and `IngestError` to the generated spec (the routes refer to them)."""

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(body_components)
            components["IngestError"] = ERROR_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
