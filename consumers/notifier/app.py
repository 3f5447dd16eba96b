"""The notifier service: the Kafka loop in a background thread, and the SSE endpoint users' browsers open."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Header, Path, Query
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from redis.exceptions import ResponseError

from consumers.notifier.consumer_loop import NotifierConsumer, build_dispatcher
from consumers.notifier.metrics import CONTENT_TYPE_LATEST, NotifierMetrics
from consumers.notifier.push_stream import STORE_UNAVAILABLE, PushStream, parse_stream_id
from consumers.notifier.redis_async import CLUSTER_OUTAGES, STORE_ERRORS, AsyncRedisClient, async_redis_client
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.tokens import TokenError, verify_user_token
from streamrec.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class _Running:
    """What the lifespan starts: the stream reader, and the Kafka loop with its thread when consuming."""

    consume: bool
    stream: PushStream | None = None
    client: AsyncRedisClient | None = None
    loop: NotifierConsumer | None = None
    thread: threading.Thread | None = None

    def loop_stopped(self) -> bool:
        """Whether this app should run the Kafka loop and it is not running (a restart would help)."""
        return self.consume and (self.thread is None or not self.thread.is_alive())

    def loop_failure(self) -> str | None:
        """Why the Kafka loop is not handling notifications now (stopped, or waiting out an outage)."""
        if not self.consume:
            return None
        if self.thread is None or not self.thread.is_alive():
            return f"kafka loop stopped: {self.loop.error if self.loop else 'not started'}"
        if self.loop is not None and self.loop.outage is not None:
            return f"kafka loop waiting out an outage: {self.loop.outage}"
        return None


def create_app(settings: Settings, notifier: NotifierSettings, consume: bool = True) -> FastAPI:
    """The notifier app; `consume=False` serves streams only (another process runs the Kafka loop)."""
    metrics = NotifierMetrics()
    stopping = threading.Event()
    running = _Running(consume=consume)
    app = FastAPI(
        title="streamrec notifier",
        version="1",
        description="Pushes recommendations to users' browsers over Server-Sent Events.",
        lifespan=_lifespan(settings, notifier, metrics, stopping, running),
    )
    app.state.metrics = metrics
    app.state.stopping = stopping
    _allow_cors(app, notifier)
    app.include_router(_stream_router(notifier, metrics, running))
    app.include_router(_health_router(settings, metrics, running))
    return app


def _lifespan(
    settings: Settings,
    notifier: NotifierSettings,
    metrics: NotifierMetrics,
    stopping: threading.Event,
    running: _Running,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the stream reader (and the Kafka loop's thread when consuming); on shutdown stop, join, close."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        notifier.warn_if_insecure()
        stopping.clear()  # the same app may be started again (tests restart it on one port)
        # Streams block in XREAD for up to a heartbeat: the socket timeout is the settings' on top of that.
        client = async_redis_client(
            settings.redis_url, socket_timeout=notifier.heartbeat_s + settings.redis_socket_timeout_s,
            socket_connect_timeout=settings.redis_connect_timeout_s,
        )
        running.client = client
        running.stream = PushStream(client, settings.key_prefix, notifier, metrics, stopping)
        if running.consume:
            running.loop = NotifierConsumer(settings, notifier, build_dispatcher(settings, notifier, metrics))
            running.thread = threading.Thread(
                target=running.loop.run, args=(stopping,), name="notifier-consumer", daemon=True
            )
            running.thread.start()
        try:
            yield
        finally:
            stopping.set()
            if running.thread is not None:
                running.thread.join(20)
            await client.aclose()

    return lifespan


def _allow_cors(app: FastAPI, notifier: NotifierSettings) -> None:
    """Let the configured origins' pages open streams; none by default."""
    if notifier.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=notifier.cors_origins, allow_methods=["GET"],
            allow_headers=["Last-Event-ID", "Authorization", "Cache-Control"], max_age=600,
        )


def _stream_router(notifier: NotifierSettings, metrics: NotifierMetrics, running: _Running) -> APIRouter:
    """The user's notification stream: token check, resume point, backlog, then live events over SSE."""
    router = APIRouter()

    @router.get(
        "/v1/users/{user_id}/notifications/stream",
        summary="The user's notifications as Server-Sent Events",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "`event: notification` with JSON data"},
            400: {"description": "Malformed Last-Event-ID, or one Redis refuses"},
            401: {"description": "Missing, malformed, forged or expired token"},
            403: {"description": "The token is for another user"},
            503: {"description": "Redis is unavailable (EventSource clients get a 200 with `event: unavailable`)"},
        },
    )
    async def notification_stream(
        user_id: str = Path(min_length=1, max_length=128),
        token: str | None = Query(None, description="Signed user token (EventSource cannot send headers)"),
        authorization: str | None = Header(None, description="`Bearer <token>`, for clients that can"),
        last_event_id: str | None = Header(None, alias="Last-Event-ID"),
        resume_after: str | None = Query(None, alias="last_event_id", description="Resume point, as a query"),
        accept: str = Header(""),
    ) -> Response:
        bearer = authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None
        try:
            expires_at = verify_user_token(notifier.token_secret.get_secret_value(), token or bearer, user_id)
        except TokenError as error:
            metrics.auth_failures.labels(error.reason).inc()
            return JSONResponse({"error": error.reason}, status_code=error.status)
        resume = last_event_id or resume_after
        if resume is not None:
            try:
                resume = parse_stream_id(resume)
            except ValueError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
        assert running.stream is not None  # set by the lifespan before any request
        try:
            after = await running.stream.start_after(user_id, resume)
            backlog = await running.stream.backlog(user_id, after)
        except CLUSTER_OUTAGES as error:  # before ResponseError: CLUSTERDOWN is one, and no fault of the id
            return _store_unavailable(user_id, error, accept)
        except ResponseError as error:
            if resume is None:
                raise
            return JSONResponse({"error": f"Last-Event-ID refused by the notification store: {error}"}, 400)
        except STORE_ERRORS as error:
            return _store_unavailable(user_id, error, accept)
        return StreamingResponse(
            running.stream.events(user_id, after, expires_at, backlog),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


def _store_unavailable(user_id: str, error: Exception, accept: str) -> Response:
    log.warning("stream of user %s not opened, Redis unavailable: %r", user_id, error)
    if "text/event-stream" in accept:  # EventSource retries a 200 after `retry:`, never a 503
        return Response(STORE_UNAVAILABLE, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return JSONResponse({"error": "notification store unavailable"}, 503, headers={"Retry-After": "2"})


def _health_router(settings: Settings, metrics: NotifierMetrics, running: _Running) -> APIRouter:
    """`/healthz` (liveness), `/readyz` (Redis and the Kafka loop) and `/metrics` (Prometheus)."""
    router = APIRouter()

    @router.get("/healthz", summary="Liveness: 503 only when the Kafka loop has stopped (a restart would help)")
    async def healthz() -> JSONResponse:
        if running.loop_stopped():
            return JSONResponse({"status": "failing", "error": running.loop_failure()}, 503)
        if (failure := running.loop_failure()) is not None:  # an outage: the loop is alive and resumes by itself
            return JSONResponse({"status": "degraded", "reason": failure, "consuming": running.consume})
        return JSONResponse({"status": "ok", "consuming": running.consume})

    @router.get("/readyz", summary="Readiness: 503 with the reason while Redis or the Kafka loop is unavailable")
    async def readyz() -> JSONResponse:
        reasons = [failure] if (failure := running.loop_failure()) else []
        try:
            assert running.client is not None
            await asyncio.wait_for(running.client.ping(), settings.redis_socket_timeout_s)
        except (*STORE_ERRORS, OSError, TimeoutError) as error:
            reasons.append(f"redis unavailable: {error!r}")
        if reasons:
            return JSONResponse({"status": "degraded", "reason": "; ".join(reasons)}, 503)
        return JSONResponse({"status": "ok", "consuming": running.consume})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
