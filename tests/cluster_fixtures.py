"""A local Redis Cluster for integration tests: three masters (and, for failover, a replica each) in a temp dir.

Each node gets its own client and cluster-bus ports (Redis 7's `cluster-port`, so no port + 10000 clash) and no
persistence: a killed master restarted on its `nodes.conf` rejoins with its slots and comes back empty, without
the scripts it had loaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from streamrec.dev_redis_cluster import (  # noqa: F401 (re-exported for the cluster tests)
    NODE_TIMEOUT_MS,
    ClusterNodeProcess,
    LocalRedisCluster,
    start_cluster,
)
from streamrec.redis_connection import redis_client
from streamrec.settings import Settings


@pytest.fixture(scope="session", name="redis_cluster")
def redis_cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """Three masters, no replicas (a killed master's slots are down until it is back).

    A test that kills a master starts it again and waits for `wait_ok` before it ends.
    """
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(name="cluster_settings")
def cluster_settings_fixture(settings: Settings, redis_cluster: LocalRedisCluster) -> Iterator[Settings]:
    """The test's settings pointed at the cluster under a prefix of its own (its keys deleted after)."""
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield settings.model_copy(update={"redis_url": redis_cluster.url, "key_prefix": prefix})
    client = redis_client(redis_cluster.url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
