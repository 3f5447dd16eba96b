"""Session-scoped real servers: one Tansu broker per test run, and the machine's Redis (or one we start).

Point at other servers with STREAMREC_TEST_KAFKA_BOOTSTRAP / STREAMREC_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from streamrec.dev_stack import free_port, redis_answers, start_redis, start_tansu
from streamrec.settings import Settings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("STREAMREC_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    port = free_port()
    process = start_tansu(port, tmp_path_factory.mktemp("broker") / "tansu.log")
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("STREAMREC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_answers(url):
        yield url
        return
    port = free_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis") / "redis.log")
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings isolated per test: own topics, consumer group and Redis key prefix (cleaned up after)."""
    unique = uuid.uuid4().hex[:10]
    test_settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        key_prefix=f"test:{unique}:",
        events_topic=f"events-{unique}",
        notifications_topic=f"notifications-{unique}",
        dlq_topic=f"events.dlq-{unique}",
        consumer_group=f"worker-{unique}",
        dev_dir=tmp_path / "dev",
        model_dir=tmp_path / "models",
    )
    yield test_settings
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"test:{unique}:*", count=1000):
        client.delete(key)


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
