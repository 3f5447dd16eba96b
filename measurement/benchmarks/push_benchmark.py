"""`streamrec bench push`: what a frontend sees: how fast the collector answers, and a click's trip to a push.

Runs in one process on the configured broker and Redis, in topics, keys and groups of its own: the collector
and the notifier on 127.0.0.1 (uvicorn in threads) and a recommendation worker thread. Three measurements:
  ingest-1      -- POST one event until the 202 (Kafka has acknowledged it), one request after another;
  ingest-100    -- POST a batch of 100 events until the 202;
  click-to-push -- with the user's SSE stream open, POST an add_to_cart until its notification arrives on the
                   stream (a new user each trial, so fatigue rules do not interfere).
Figures are printed and written by the one report writer (push_latency.md, .csv, .json and a PNG of the
latency distributions).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

from consumers.notifier.app import create_app as create_notifier
from consumers.notifier.settings import NotifierSettings
from consumers.notifier.tokens import mint_user_token
from consumers.worker.main import build_worker
from measurement.benchmarks.latency import LATENCY_COLUMNS, latency_figures
from measurement.report import BenchmarkResult, render_markdown, write_report
from producers.collector.app import create_app as create_collector
from producers.collector.demo_catalogue import DEMO_PRODUCTS, seed_demo_catalogue
from producers.collector.settings import CollectorSettings
from streamrec.dev_stack import free_port
from streamrec.settings import Settings
from streamrec.topics import ensure_topics


@dataclass
class Measurement:
    """One measurement's raw timings and how many events each request carried."""

    name: str
    latencies_ms: list[float]
    events_per_request: int


def push_result(results: list[Measurement]) -> BenchmarkResult:
    """The measurements as one table of latency percentiles (no floor: nothing does less than the collector)."""
    rows = {m.name: {"requests": len(m.latencies_ms), "events per request": m.events_per_request,
                     **latency_figures(m.latencies_ms)} for m in results}
    return BenchmarkResult(
        title="Collector answer (202 after Kafka ack) and click-to-push latency", row_label="measurement",
        units={"requests": "count", "events per request": "count", **LATENCY_COLUMNS}, rows=rows,
        samples={m.name: m.latencies_ms for m in results}, samples_label="latency (ms)",
    )


class BackgroundServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread (lifespan included)."""

    def __init__(self, app, port: int) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{self.url} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def _event(kind: str, user: str, item: str) -> dict[str, object]:
    return {"type": kind, "user_id": user, "session_id": f"{user}-s", "item_id": item}


def _ingest(client: httpx.Client, url: str, headers: dict[str, str], batch: int, requests: int) -> list[float]:
    latencies = []
    for i in tqdm(range(requests), desc=f"ingest x{batch}", leave=False):
        body = {"events": [_event("page_view", f"bench-u{(i * batch + j) % 97}", DEMO_PRODUCTS[j % 12].item_id)
                           for j in range(batch)]}
        started = time.perf_counter()
        response = client.post(url, json=body, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 202:
            raise RuntimeError(f"collector answered {response.status_code}: {response.text}")
    return latencies


def _click_to_push(
    collector_url: str, notifier_url: str, headers: dict[str, str], secret: str, user: str, timeout_s: float = 30
) -> float:
    """Open the user's stream, POST an add_to_cart, return ms until its notification is read off the stream."""
    connected, arrived = threading.Event(), threading.Event()
    token = mint_user_token(secret, user, 600)

    def listen() -> None:
        url = f"{notifier_url}/v1/users/{user}/notifications/stream"
        with httpx.Client(timeout=timeout_s) as client, client.stream("GET", url, params={"token": token}) as stream:
            for line in stream.iter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("event: notification"):
                    arrived.set()
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    if not connected.wait(timeout_s):
        raise RuntimeError("the push stream did not open")
    started = time.perf_counter()
    response = httpx.post(f"{collector_url}/v1/events", headers=headers,
                          json={"events": [_event("page_view", user, "demo-tent"),
                                           _event("add_to_cart", user, "demo-tent")]})
    if response.status_code != 202:
        raise RuntimeError(f"collector answered {response.status_code}: {response.text}")
    if not arrived.wait(timeout_s):
        raise RuntimeError(f"no push for {user} within {timeout_s}s")
    return (time.perf_counter() - started) * 1000


def run_push_benchmark(
    base: Settings, singles: int, batches: int, clicks: int, out_dir: Path
) -> BenchmarkResult:
    """Time the collector's answers and click-to-push trips in topics and keys of their own; write the table."""
    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={
        "events_topic": f"bench-push-events-{run}", "notifications_topic": f"bench-push-notifications-{run}",
        "dlq_topic": f"bench-push-dlq-{run}", "consumer_group": f"bench-push-worker-{run}",
        "key_prefix": f"bench-push:{run}:",
    })
    ensure_topics(settings)
    seed_demo_catalogue(settings)
    key, secret = secrets.token_hex(8), secrets.token_hex(16)
    headers = {"X-API-Key": key}
    collector = create_collector(settings, CollectorSettings(api_keys={"bench": key}, demo_enabled=False))
    notifier = create_notifier(settings, NotifierSettings(
        consumer_group=f"bench-push-notifier-{run}", token_secret=secret, heartbeat_s=1.0, cors_origins=[],
    ))
    worker = build_worker(settings, client_id="bench-push-worker")
    stop = threading.Event()
    worker_thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    worker_thread.start()
    results: list[Measurement] = []
    try:
        with BackgroundServer(notifier, free_port()) as push, BackgroundServer(collector, free_port()) as ingest, \
                httpx.Client(timeout=30) as client:
            url = f"{ingest.url}/v1/events"
            _ingest(client, url, headers, 1, 20)  # warm-up: producer connection, metadata
            results.append(Measurement("ingest-1", _ingest(client, url, headers, 1, singles), 1))
            results.append(Measurement("ingest-100", _ingest(client, url, headers, 100, batches), 100))
            _click_to_push(ingest.url, push.url, headers, secret, f"bench-warm-{run}", timeout_s=60)  # groups join
            trips = [_click_to_push(ingest.url, push.url, headers, secret, f"bench-{run}-{i}")
                     for i in tqdm(range(clicks), desc="click-to-push", leave=False)]
            results.append(Measurement("click-to-push", trips, 2))
    finally:
        stop.set()
        worker_thread.join(20)
        client = settings.redis_client()
        for stale in client.scan_iter(match=f"{settings.key_prefix}*", count=1000):
            client.delete(stale)
    return _report(results, out_dir)


def _report(results: list[Measurement], out_dir: Path) -> BenchmarkResult:
    result = push_result(results)
    write_report(result, out_dir, "push_latency")
    print(render_markdown(result))
    print(f"wrote {out_dir / 'push_latency.md'}, .csv, .json and .png")
    return result
