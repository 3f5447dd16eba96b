"""Every panel of the Grafana dashboard reads a metric that the collector, a worker or the notifier exposes, with
labels it has: a renamed metric or label fails here instead of leaving an empty panel in production."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from consumers.notifier.metrics import NotifierMetrics
from consumers.worker.http_endpoints import serve_endpoints
from consumers.worker.recommendation_pipeline import RecommendationPipeline
from consumers.worker.worker import RecommendationWorker
from model.recommender import StaticRecommenderSource
from producers.collector.metrics import CollectorMetrics
from streamrec.settings import Settings
from tests.fake_kafka import FakeConsumer, FakeProducer

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "streamrec-dashboard.json"
_METRIC = re.compile(r"\bstreamrec_[a-z0-9_]+")
_BY = re.compile(r"\bby \(([^)]*)\)")


class _Served:
    name, version = "hybrid", "1"


def _worker_exposition() -> str:
    """The worker's /metrics, scraped over HTTP, with every labelled family holding a sample."""
    pipeline = RecommendationPipeline(None, StaticRecommenderSource(_Served()), Settings())
    worker = RecommendationWorker(Settings(), pipeline, FakeConsumer([]), FakeProducer([]))
    with pipeline.stages.stage("redis apply"):
        pass
    pipeline.stats.by_reason["already_notified"] = 1
    worker.dead_letters.by_stage["decode"] = 1
    worker.last_lag, worker.last_partition_lag = 3, {TopicPartition("events", 0): 3}
    server = serve_endpoints(worker, 0, host="127.0.0.1")
    try:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=5) as response:
            return response.read().decode()
    finally:
        server.shutdown()


def _collector_exposition() -> str:
    metrics = CollectorMetrics()
    metrics.accepted.labels(application="shop", type="page_view").inc()
    metrics.rejected.labels(reason="invalid").inc()
    metrics.produce_latency.observe(0.01)
    return metrics.render().decode()


def _notifier_exposition() -> str:
    metrics = NotifierMetrics()
    metrics.suppressed.labels(reason="daily_cap").inc()
    metrics.count_expired(1, 1)
    metrics.webhook.labels(outcome="delivered").inc()
    metrics.auth_failures.labels(reason="bad_token").inc()
    return metrics.render().decode()


def _samples() -> dict[str, set[str]]:
    """Sample name (as PromQL sees it: `_total`, `_bucket`, `_info` ...) -> the label names its samples carry."""
    labels: dict[str, set[str]] = {}
    for text in (_worker_exposition(), _collector_exposition(), _notifier_exposition()):
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels.setdefault(sample.name, set()).update(set(sample.labels) - {"le"})
    return labels


def _targets() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_panel_reads_a_metric_that_exists_with_the_labels_it_groups_by():
    samples = _samples()
    targets = _targets()
    assert len(targets) >= 20  # collector, workers and notifier rows
    for title, expr in targets:
        names = _METRIC.findall(expr)
        assert names, f"{title}: no streamrec metric in {expr!r}"
        for name in names:
            assert name in samples, f"{title}: {name} is not exposed (have {sorted(samples)})"
            for grouped in _BY.findall(expr):
                wanted = {label.strip() for label in grouped.split(",")} - {"le"}
                assert wanted <= samples[name], f"{title}: {name} has no label {wanted - samples[name]}"


def test_the_dashboard_covers_throughput_lag_latency_dead_letters_and_fatigue():
    exprs = " ".join(expr for _, expr in _targets())
    for wanted in ("streamrec_worker_events_total", "streamrec_worker_partition_lag",
                   "streamrec_worker_stage_latency_seconds_bucket", "streamrec_worker_dead_letters_by_stage_total",
                   "streamrec_notifier_suppressed_total", "streamrec_collector_produce_latency_seconds_bucket"):
        assert wanted in exprs
