"""The pipeline on a Redis Cluster: the end-to-end, kill-a-worker and replay tests, run as they are against a local
three-master cluster instead of one server (same assertions: each trigger notified once, nothing filtered leaks,
nothing lost or doubled across a SIGKILL, no replay sees its future)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from streamrec.redis_connection import redis_client
from streamrec.settings import Settings
from tests.cluster_fixtures import LocalRedisCluster, redis_cluster_fixture  # noqa: F401 (redis_cluster)
from tests.faults import test_worker_faults as worker_faults
from tests.integration import test_pipeline_end_to_end as end_to_end
from tests.integration import test_replay as replay

pytestmark = pytest.mark.integration


@pytest.fixture
def on_cluster(settings: Settings, redis_cluster: LocalRedisCluster) -> Iterator[Settings]:
    """The test's isolated settings with Redis on the cluster, under a prefix of its own (deleted after)."""
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield settings.model_copy(update={"redis_url": redis_cluster.url, "key_prefix": prefix})
    client = redis_client(redis_cluster.url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def _spread(cluster: LocalRedisCluster, prefix: str) -> int:
    """How many masters hold keys under `prefix`."""
    return sum(1 for node in cluster.masters() if next(node.client().scan_iter(match=f"{prefix}*", count=1000), None))


def test_end_to_end_on_the_cluster(on_cluster, redis_cluster):
    end_to_end.test_every_trigger_yields_exactly_one_unfiltered_notification(on_cluster)
    assert _spread(redis_cluster, on_cluster.key_prefix) == 3


def test_a_worker_killed_mid_stream_on_the_cluster_loses_nothing(on_cluster, redis_cluster, tmp_path):
    rows: list = []
    worker_faults.test_a_worker_killed_mid_stream_and_restarted_loses_nothing(on_cluster, tmp_path, rows)
    assert rows and _spread(redis_cluster, on_cluster.key_prefix) == 3


def test_a_replay_on_the_cluster_cannot_recommend_from_its_future(on_cluster, redis_cluster, tmp_path):
    replay.test_a_replay_cannot_recommend_from_its_future(on_cluster, redis_client(redis_cluster.url), tmp_path)
