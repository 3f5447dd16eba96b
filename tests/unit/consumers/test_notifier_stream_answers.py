"""What the stream endpoint answers when Redis is down: a clear 503, or for EventSource a 200 that retries."""

from __future__ import annotations

from fastapi.testclient import TestClient

from consumers.notifier.app import create_app
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.tokens import mint_user_token
from streamrec.dev_stack import free_port
from streamrec.settings import Settings

SECRET = "answers-secret"


def app_without_redis():
    nobody = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_connect_timeout_s=0.5)
    return create_app(nobody, NotifierSettings(token_secret=SECRET), consume=False)


def test_a_stream_opened_while_redis_is_down_is_a_503_with_a_reason():
    with TestClient(app_without_redis()) as client:
        answer = client.get("/v1/users/alice/notifications/stream",
                            params={"token": mint_user_token(SECRET, "alice", 60)})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"
    assert answer.json() == {"error": "notification store unavailable"}


def test_eventsource_gets_a_200_that_tells_it_to_retry_since_it_never_retries_a_503():
    with TestClient(app_without_redis()) as client:
        answer = client.get("/v1/users/alice/notifications/stream",
                            params={"token": mint_user_token(SECRET, "alice", 60)},
                            headers={"Accept": "text/event-stream", "Last-Event-ID": "5-0"})
    assert answer.status_code == 200
    assert answer.text.startswith("retry: 2000\n")
    assert "event: unavailable\n" in answer.text and "id:" not in answer.text  # Last-Event-ID is kept


def test_readiness_reports_redis_down_and_liveness_stays_up():
    with TestClient(app_without_redis()) as client:
        ready = client.get("/readyz")
        live = client.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "degraded" and "redis" in ready.json()["reason"]
    assert live.status_code == 200
