"""The worker's /metrics, /healthz and /readyz read the worker as it is: counts, stages, model, readiness, a stall."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from kafka import TopicPartition

from consumers.worker.http_endpoints import serve_endpoints
from consumers.worker.recommendation_pipeline import RecommendationPipeline
from consumers.worker.worker import RecommendationWorker
from model.recommender import StaticRecommenderSource
from streamrec.settings import Settings
from tests.fake_kafka import FakeConsumer, FakeProducer


class Served:
    name, version = "hybrid", "20261203T000000000Z"


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def worker():
    calls: list[str] = []
    pipeline = RecommendationPipeline(None, StaticRecommenderSource(Served()), Settings())
    return RecommendationWorker(Settings(), pipeline, FakeConsumer(calls), FakeProducer(calls))


def test_metrics_and_probes_tell_the_workers_state(worker):
    server = serve_endpoints(worker, 0, host="127.0.0.1", stall_s=0.5)
    port = server.server_address[1]
    try:
        assert _get(port, "/readyz")[0] == 503  # no partitions yet
        worker.pipeline.stats.events, worker.pipeline.stats.triggers = 40, 7
        worker.pipeline.stats.by_reason["already_notified"] = 2
        with worker.pipeline.stages.stage("redis apply"):
            pass
        with worker.pipeline.stages.stage("redis apply"):
            time.sleep(0.03)  # lands in the 0.05 s bucket, above 0.025 s
        worker.dead_letters.by_stage["decode"] = 3
        worker.last_lag = 12
        worker.last_partition_lag = {TopicPartition("events", 1): 5, TopicPartition("events", 0): 7}
        worker.ready.set()
        status, text = _get(port, "/metrics")
        assert status == 200
        assert "streamrec_worker_events_total 40.0" in text and "streamrec_worker_triggers_total 7.0" in text
        assert 'streamrec_worker_triggers_not_notified_total{reason="already_notified"} 2.0' in text
        assert 'streamrec_worker_stage_calls_total{stage="redis apply"} 2.0' in text
        assert 'streamrec_worker_stage_latency_seconds_bucket{le="0.025",stage="redis apply"} 1.0' in text
        assert 'streamrec_worker_stage_latency_seconds_bucket{le="0.05",stage="redis apply"} 2.0' in text
        assert 'streamrec_worker_stage_latency_seconds_count{stage="redis apply"} 2.0' in text
        assert 'streamrec_worker_dead_letters_by_stage_total{stage="decode"} 3.0' in text
        assert "streamrec_worker_lag 12.0" in text
        assert 'streamrec_worker_partition_lag{partition="0",topic="events"} 7.0' in text
        assert 'streamrec_worker_partition_lag{partition="1",topic="events"} 5.0' in text
        assert 'streamrec_worker_model_info{name="hybrid",version="20261203T000000000Z"} 1.0' in text
        worker.heartbeat = time.monotonic()
        assert _get(port, "/healthz")[0] == 200 and _get(port, "/readyz")[0] == 200
        worker.outage = "Redis"
        worker.ready.clear()  # what an outage does: alive, not ready
        status, body = _get(port, "/readyz")
        assert status == 503 and '"reason": "Redis"' in body and _get(port, "/healthz")[0] == 200
        worker.heartbeat = time.monotonic() - 5  # the loop has given no sign of life for longer than stall_s
        assert _get(port, "/healthz")[0] == 503
        assert _get(port, "/nothing")[0] == 404
    finally:
        server.shutdown()


class _ConsumerWithOffsets(FakeConsumer):
    def end_offsets(self, partitions, timeout_ms=None):
        return {tp: 100 + 10 * tp.partition for tp in partitions}

    def position(self, tp, timeout_ms=None):
        return 90


def test_the_progress_report_reads_lag_per_partition_and_in_total():
    consumer = _ConsumerWithOffsets([], partitions={TopicPartition("events", 0), TopicPartition("events", 2)})
    pipeline = RecommendationPipeline(None, StaticRecommenderSource(Served()), Settings())
    worker = RecommendationWorker(Settings(), pipeline, consumer, FakeProducer([]))
    worker._report_progress(10.0, 0)
    assert worker.last_partition_lag == {TopicPartition("events", 0): 10, TopicPartition("events", 2): 30}
    assert worker.last_lag == 40 == worker.lag()
    worker.outage = "Kafka"  # unknown while the broker is away: never a stale figure
    worker._report_progress(10.0, 0)
    assert worker.last_lag is None and worker.last_partition_lag == {}
