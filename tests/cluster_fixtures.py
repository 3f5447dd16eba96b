"""A local Redis Cluster for integration tests: three masters (and, for failover, a replica each) in a temp dir.

Each node gets its own client and cluster-bus ports (Redis 7's `cluster-port`, so no port + 10000 clash) and no
persistence: a killed master restarted on its `nodes.conf` rejoins with its slots and comes back empty, without
the scripts it had loaded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamrec.dev_redis_cluster import (  # noqa: F401 (re-exported for the cluster tests)
    NODE_TIMEOUT_MS,
    ClusterNodeProcess,
    LocalRedisCluster,
    start_cluster,
)


@pytest.fixture(scope="session", name="redis_cluster")
def redis_cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """Three masters, no replicas (a killed master's slots are down until it is back).

    A test that kills a master starts it again and waits for `wait_ok` before it ends.
    """
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()
