"""The pipeline on a Redis Cluster: the end-to-end, kill-a-worker and replay tests, run as they are against a local
three-master cluster instead of one server (same assertions: each trigger notified once, nothing filtered leaks,
nothing lost or doubled across a SIGKILL, no replay sees its future), and a master killed mid-stream on a cluster
with replicas: the worker rides out the failover and no trigger is lost or notified twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from producers.simulator import simulate
from streamrec.redis_connection import redis_client
from tests.cluster_fixtures import (  # noqa: F401 (fixtures)
    LocalRedisCluster,
    cluster_settings_fixture,
    redis_cluster_fixture,
    start_cluster,
)
from tests.faults import test_worker_faults as worker_faults
from tests.faults.ledger import NotificationLedger, restamped_recent
from tests.integration import test_pipeline_end_to_end as end_to_end
from tests.integration import test_replay as replay
from tests.pipeline_helpers import expected_triggers, read_topic, seed_catalogue, send, worker_process

pytestmark = pytest.mark.integration


def _spread(cluster: LocalRedisCluster, prefix: str) -> int:
    """How many masters hold keys under `prefix`."""
    return sum(1 for node in cluster.masters() if next(node.client().scan_iter(match=f"{prefix}*", count=1000), None))


def test_end_to_end_on_the_cluster(cluster_settings, redis_cluster):
    end_to_end.test_every_trigger_yields_exactly_one_unfiltered_notification(cluster_settings)
    assert _spread(redis_cluster, cluster_settings.key_prefix) == 3


def test_a_worker_killed_mid_stream_on_the_cluster_loses_nothing(cluster_settings, redis_cluster, tmp_path):
    rows: list = []
    worker_faults.test_a_worker_killed_mid_stream_and_restarted_loses_nothing(cluster_settings, tmp_path, rows)
    assert rows and _spread(redis_cluster, cluster_settings.key_prefix) == 3


def test_a_replay_on_the_cluster_cannot_recommend_from_its_future(cluster_settings, redis_cluster, tmp_path):
    replay.test_a_replay_cannot_recommend_from_its_future(cluster_settings, redis_client(redis_cluster.url), tmp_path)


@pytest.fixture(scope="module")
def replicated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """Three masters with a replica each: a killed master's replica is promoted."""
    cluster = start_cluster(tmp_path_factory.mktemp("pipeline-cluster-replicas"), replicas=1)
    yield cluster
    cluster.stop()


def test_a_master_killed_mid_stream_fails_over_and_no_trigger_is_lost_or_doubled(settings, replicated_cluster,
                                                                                 tmp_path):
    replicated_settings = settings.model_copy(update={"redis_url": replicated_cluster.url,
                                                   "key_prefix": f"test:{uuid.uuid4().hex[:10]}:"})
    world, events = simulate(1500, seed=61, tools=200)
    events = restamped_recent(events)  # simulated clocks are months old: the events topic's retention would drop them
    seed_catalogue(replicated_settings, world)
    triggers = expected_triggers(events, replicated_settings.trigger_every_nth_page_view)
    ledger = NotificationLedger(replicated_settings, triggers)
    send(replicated_settings, events)
    worker = worker_process(replicated_settings, tmp_path / "worker.log", max_poll_records=40)
    try:
        read_topic(replicated_settings, replicated_settings.notifications_topic,
                   done=lambda records: len(records) >= 60, timeout_s=90)
        victim = replicated_cluster.node_of(f"{replicated_settings.key_prefix}{{u:{events[-1].user_id}}}")
        victim.process.send_signal(signal.SIGKILL)  # mid-stream: no WAIT for its replica first
        victim.process.wait(10)
        killed_at = time.monotonic()
        replicated_cluster.wait_ok(60)  # the replica was promoted
        failover_s = time.monotonic() - killed_at
        counts = ledger.counts(timeout_s=120)
        alive = worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    print(f"failover {failover_s:.1f} s; {counts.expected} triggers: {len(counts.lost)} lost, {counts.duplicated} "
          f"duplicated, {counts.repeated_records} repeated records")
    assert alive  # the worker waited the failover out
    counts.assert_exact(replicated_settings)
