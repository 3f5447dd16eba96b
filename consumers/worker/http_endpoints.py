"""The worker's HTTP side: `/metrics` (Prometheus), `/healthz` (liveness) and `/readyz` (readiness), on a thread.

Every figure is read from the worker when scraped (a custom collector), so the poll loop pays nothing per event and
a scrape never calls the broker or Redis from another thread: lag is the value the loop's own progress report last
read. Liveness fails only when the loop has given no sign of life for `stall_s` (waiting out an outage is a sign
of life: a restart would not bring the broker back); readiness needs partitions assigned, no outage, and the loop
alive.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from consumers.worker.worker import RecommendationWorker
from streamrec.stage_timing import LATENCY_BUCKETS_S


class WorkerCollector:
    def __init__(self, worker: RecommendationWorker) -> None:
        self.worker = worker

    def collect(self):
        worker, stats = self.worker, self.worker.pipeline.stats
        for name, value, what in (
            ("events", stats.events, "Events decoded and applied"),
            ("duplicates", stats.duplicates, "Redelivered events already applied"),
            ("triggers", stats.triggers, "Events that asked for a recommendation"),
            ("notifications", stats.notifications, "Notifications produced"),
            ("dead_letters", worker.dead_letters.count, "Records sent to the dead-letter topic"),
            ("batches", worker.batches, "Batches handled"),
            ("committed_records", worker.committed_records, "Records whose offsets were committed"),
            ("outages", worker.outages, "Outages of Redis or the broker waited out"),
        ):
            yield CounterMetricFamily(f"streamrec_worker_{name}", what, value=value)
        silent = CounterMetricFamily("streamrec_worker_triggers_not_notified", "Triggers left without a "
                                     "notification, by reason", labels=["reason"])
        for reason, count in sorted(stats.by_reason.items()):
            silent.add_metric([reason], count)
        yield silent
        seconds = CounterMetricFamily("streamrec_worker_stage_seconds", "Seconds spent per stage of the batches",
                                      labels=["stage"])
        calls = CounterMetricFamily("streamrec_worker_stage_calls", "Timed calls per stage", labels=["stage"])
        stages = worker.pipeline.stages
        for stage in list(stages.seconds):
            seconds.add_metric([stage], stages.seconds[stage])
            calls.add_metric([stage], stages.calls[stage])
        yield seconds
        yield calls
        yield _stage_latency(stages)
        letters = CounterMetricFamily("streamrec_worker_dead_letters_by_stage", "Dead letters by the stage that "
                                      "refused the record (decode, process)", labels=["stage"])
        for stage, count in sorted(worker.dead_letters.by_stage.items()):
            letters.add_metric([stage], count)
        yield letters
        if worker.last_lag is not None:
            yield GaugeMetricFamily("streamrec_worker_lag", "Records on the owned partitions not yet polled (as of "
                                    "the last progress report)", value=worker.last_lag)
        lag = GaugeMetricFamily("streamrec_worker_partition_lag", "Records not yet polled per owned partition (as "
                                "of the last progress report)", labels=["topic", "partition"])
        for tp, records in sorted(worker.last_partition_lag.items()):
            lag.add_metric([tp.topic, str(tp.partition)], records)
        yield lag
        yield GaugeMetricFamily("streamrec_worker_ready", "1 while ready", value=1 if worker.ready.is_set() else 0)
        served = worker.pipeline.source.served  # never `current()` here: it may load a model, on the scrape's thread
        model = InfoMetricFamily("streamrec_worker_model", "The model served")
        model.add_metric([], {"name": served.name, "version": str(served.version)})
        yield model
        yield CounterMetricFamily("streamrec_worker_model_reloads", "Saved models loaded",
                                  value=getattr(worker.pipeline.source, "reloads", 0))


def _stage_latency(stages) -> HistogramMetricFamily:
    """Per stage, the calls' latency histogram (cumulative buckets, as Prometheus reads them)."""
    family = HistogramMetricFamily("streamrec_worker_stage_latency_seconds", "Latency of one call per stage "
                                   "of the batches", labels=["stage"])
    for stage in list(stages.buckets):
        counts, cumulative, buckets = stages.buckets[stage], 0, []
        for bound, count in zip((*LATENCY_BUCKETS_S, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family.add_metric([stage], buckets, sum_value=stages.seconds[stage])
    return family


def health(worker: RecommendationWorker, stall_s: float) -> tuple[int, dict]:
    silent_s = time.monotonic() - worker.heartbeat
    alive = silent_s <= stall_s
    return (200 if alive else 503), {"alive": alive, "loop_silent_s": round(silent_s, 1), "outage": worker.outage}


def readiness(worker: RecommendationWorker, stall_s: float) -> tuple[int, dict]:
    status, body = health(worker, stall_s)
    ready = status == 200 and worker.ready.is_set()
    reason = None if ready else ("loop stalled" if status != 200 else worker.outage or "no partitions assigned")
    return (200 if ready else 503), {**body, "ready": ready, "reason": reason}


def serve_endpoints(worker: RecommendationWorker, port: int, host: str = "0.0.0.0",
                    stall_s: float = 120.0) -> ThreadingHTTPServer:
    """Start the endpoints on a daemon thread; `server.shutdown()` stops them. Port 0 picks a free one."""
    registry = CollectorRegistry()
    registry.register(WorkerCollector(worker))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                status, body = (health if self.path == "/healthz" else readiness)(worker, stall_s)
                self._send(status, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b'{"error": "not found: /metrics, /healthz, /readyz"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - scrapes are not worth a log line each
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="worker-http", daemon=True).start()
    return server
