"""Wire a worker from settings and run it until SIGTERM/SIGINT (drain the batch in hand, flush, commit, close)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from functools import partial
from pathlib import Path

from consumers.worker.recommendation_pipeline import RecommendationPipeline
from consumers.worker.state_recovery import StateRecovery
from consumers.worker.worker import RecommendationWorker
from model.serving import make_recommender_source
from streamrec.compute_threads import limit_compute_threads
from streamrec.kafka_clients import make_consumer, make_producer, make_transactional_producer
from streamrec.redis_wait import wait_for_redis
from streamrec.session_store import SessionStore
from streamrec.settings import Settings
from streamrec.topics import ensure_topics

log = logging.getLogger(__name__)


def build_worker(
    settings: Settings, client_id: str = "streamrec-worker", stop: threading.Event | None = None
) -> RecommendationWorker:
    client = settings.redis_client()
    wait_for_redis(client, settings, stop)
    store = SessionStore(client, settings)
    pipeline = RecommendationPipeline(store, make_recommender_source(settings, client), settings)
    consumer = make_consumer(settings, settings.consumer_group, client_id)
    factory = make_transactional_producer if settings.delivery == "exactly-once" else make_producer
    new_producer = partial(factory, settings, client_id)
    producer = new_producer()
    # After a broker restart a producer can stay in a fatal state: the worker builds a new one with this.
    return RecommendationWorker(settings, pipeline, consumer, producer,
                                producer_factory=new_producer,
                                state=StateRecovery(client, settings))


def mirror_readiness(worker: RecommendationWorker, ready_file: Path, stop: threading.Event,
                     interval_s: float = 0.2) -> None:
    """Keep `ready_file` present exactly while the worker is ready (an exec readiness probe tests for it):
    it appears once partitions are owned, and goes away during an outage until the worker recovers."""
    while not stop.is_set():
        if worker.ready.is_set():
            if not ready_file.exists():
                ready_file.parent.mkdir(parents=True, exist_ok=True)
                ready_file.write_text(str(os.getpid()))
        else:
            ready_file.unlink(missing_ok=True)
        stop.wait(interval_s)
    ready_file.unlink(missing_ok=True)


def run_worker(
    settings: Settings, stop: threading.Event | None = None, ready_file: Path | None = None
) -> RecommendationWorker:
    """Run until `stop` is set or a termination signal arrives; `ready_file` appears once partitions are owned."""
    ensure_topics(settings)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: (log.info("signal %d: draining", signum), stop.set()))
    limit_compute_threads(settings.compute_threads)  # before any model loads
    worker = build_worker(settings, stop=stop)
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)
        threading.Thread(target=mirror_readiness, args=(worker, ready_file, stop), daemon=True).start()
    endpoints = None
    if settings.worker_http_port is not None:
        from consumers.worker.http_endpoints import serve_endpoints

        endpoints = serve_endpoints(worker, settings.worker_http_port)
        log.info("metrics and probes on port %d: /metrics /healthz /readyz", endpoints.server_address[1])
    try:
        worker.run(stop)
    finally:
        if endpoints is not None:
            endpoints.shutdown()
    log.info("worker stopped after %d batches, %d records committed", worker.batches, worker.committed_records)
    return worker
