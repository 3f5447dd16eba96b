"""Noticing a Redis Cluster master that came back empty: each master holds a state-epoch marker of its own, so the
worker rebuilds the store whichever master lost its data (one marker on one master would miss two in three)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from consumers.worker.state_recovery import StateRecovery
from consumers.worker.state_restore import RestoreSummary
from streamrec.redis_connection import redis_client
from streamrec.settings import Settings
from tests.cluster_fixtures import LocalRedisCluster, start_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A cluster of this module's own: its masters are killed and come back empty."""
    cluster = start_cluster(tmp_path_factory.mktemp("recovery-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


def test_any_master_that_comes_back_empty_is_rebuilt_from_the_log(own_cluster):
    settings = Settings(redis_url=own_cluster.url, key_prefix=f"test:{uuid.uuid4().hex[:8]}:", auto_restore=True)
    restores: list[datetime] = []

    def restore(_settings: Settings, since: datetime) -> RestoreSummary:
        restores.append(since)
        return RestoreSummary(since=since.isoformat())

    recovery = StateRecovery(redis_client(settings.redis_url, socket_timeout=5), settings, restore)
    markers = recovery.epoch_keys()
    assert len({own_cluster.node_of(key).port for key in markers}) == 3  # one marker on each master
    assert recovery.ensure() and len(restores) == 1  # a new store: rebuilt once, markers written
    assert not recovery.ensure()  # whole now
    for victim in own_cluster.masters():  # whichever master restarts without its data, the loss is noticed
        victim.kill()
        victim.start()
        own_cluster.wait_ok()
        recovery = StateRecovery(redis_client(settings.redis_url, socket_timeout=5), settings, restore)
        before = len(restores)
        assert recovery.ensure() and len(restores) == before + 1
        assert not recovery.ensure()
