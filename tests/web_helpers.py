"""Helpers for tests of the HTTP services: run an ASGI app on 127.0.0.1 in a thread, read Server-Sent Events."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from streamrec.dev_stack import free_port


@contextmanager
def serve(app, port: int | None = None) -> Iterator[str]:
    """Serve `app` (lifespan included) on 127.0.0.1 until the block ends; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: str


def read_sse(
    url: str, count: int, timeout_s: float = 20, headers: dict[str, str] | None = None
) -> tuple[int, list[SseEvent]]:
    """Open an SSE stream and read until `count` events arrived or `timeout_s` passed; (status, events).

    The deadline is checked on every line: the server's keep-alive comments keep it honest.
    """
    events: list[SseEvent] = []
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=httpx.Timeout(timeout_s)) as client, client.stream(
        "GET", url, headers=headers or {}
    ) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, []
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "":
                if "data" in fields:
                    events.append(SseEvent(fields.get("id"), fields.get("event", "message"), fields["data"]))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
            if len(events) >= count or time.monotonic() > deadline:
                break
    return 200, events
