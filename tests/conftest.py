"""Session-scoped real servers: one broker per test run, and the machine's Redis (or one we start).

The broker is Apache Kafka 4.1.1 (what users run; jars from scripts/install-kafka.sh), or Tansu with
STREAMREC_TEST_BROKER=tansu; without Java or the jars the run falls back to Tansu and says so.
Point at other servers with STREAMREC_TEST_KAFKA_BOOTSTRAP / STREAMREC_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from streamrec.dev_stack import (
    KAFKA,
    REDIS_MIN_VERSION,
    TANSU,
    LocalBroker,
    LocalRedis,
    free_port,
    kafka_unavailable_reason,
    redis_answers,
    redis_server_binary,
    redis_server_version,
    redis_version,
    start_broker,
    start_redis,
)
from streamrec.settings import Settings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _loud(message: str) -> None:
    """A warning in pytest's summary and a line on stderr as it happens."""
    print(f"\n*** streamrec tests: {message}", file=sys.stderr)
    warnings.warn(message, pytest.PytestWarning, stacklevel=2)


def requested_broker() -> tuple[str, str | None]:
    """(kind, why it is not the one asked for) from STREAMREC_TEST_BROKER: kafka (default) or tansu."""
    asked = os.environ.get("STREAMREC_TEST_BROKER", "kafka").strip().lower()
    if asked == "tansu":
        return TANSU, None
    if asked not in ("kafka", "apache-kafka", ""):
        raise pytest.UsageError(f"STREAMREC_TEST_BROKER={asked!r}: use kafka or tansu")
    reason = kafka_unavailable_reason()
    return (TANSU, f"Apache Kafka unavailable ({reason}): running on Tansu instead") if reason else (KAFKA, None)


def pytest_report_header(config: pytest.Config) -> str:
    external = os.environ.get("STREAMREC_TEST_KAFKA_BOOTSTRAP")
    if external:
        return f"broker: external at {external}"
    kind, fallback = requested_broker()
    return f"broker: {kind}" + (f" ({fallback})" if fallback else "")


@pytest.fixture(scope="session")
def _session_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    if os.environ.get("STREAMREC_TEST_KAFKA_BOOTSTRAP"):
        yield None
        return
    kind, fallback = requested_broker()
    if fallback:
        _loud(fallback)
    root = tmp_path_factory.mktemp("broker")
    broker = start_broker(kind, free_port(), root / "data", root / "broker.log")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(_session_broker: LocalBroker | None) -> str:
    if _session_broker is None:
        return os.environ["STREAMREC_TEST_KAFKA_BOOTSTRAP"]
    return _session_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_broker(_session_broker: LocalBroker | None) -> LocalBroker:
    """The session's broker, for fault tests: kind, port, data_dir, persistent, stall/resume, kill, restart.

    A test that kills or stalls it need not bring it back: the next test's `settings` fixture does.
    """
    if _session_broker is None:
        pytest.skip("STREAMREC_TEST_KAFKA_BOOTSTRAP points at an external broker: this test kills its own")
    return _session_broker


def _warn_if_old_redis(version: str | None, where: str) -> None:
    parsed = tuple(int(part) for part in (version or "0").split(".")[:2] if part.isdigit())
    if parsed < REDIS_MIN_VERSION:
        _loud(f"Redis {version} at {where} is older than {'.'.join(map(str, REDIS_MIN_VERSION))}: the notifier's "
              "`XADD <ms>-*` fails there; install Debian's redis-server (scripts/install-redis.sh)")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("STREAMREC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_answers(url):
        _warn_if_old_redis(redis_version(url), url)
        yield url
        return
    _warn_if_old_redis(".".join(map(str, redis_server_version(redis_server_binary()))), redis_server_binary())
    port = free_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis") / "redis.log")
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture
def private_redis_server(tmp_path: Path) -> Iterator[Callable[..., LocalRedis]]:
    """Start private redis-servers (own port and dir) that a test may stall, kill and restart.

    `private_redis_server(aof=True)` appends every write to disk, so a restart after SIGKILL keeps the data;
    the default (no persistence) comes back empty. All are stopped after the test.
    """
    binary = redis_server_binary()
    _warn_if_old_redis(".".join(map(str, redis_server_version(binary))), binary)
    started: list[LocalRedis] = []

    def start(aof: bool = False, appendfsync: str = "always") -> LocalRedis:
        server = LocalRedis(free_port(), tmp_path / f"redis-{len(started)}", aof, appendfsync).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
             _session_broker: LocalBroker | None) -> Iterator[Settings]:
    """Settings isolated per test: own topics, consumer group and Redis key prefix (cleaned up after)."""
    if _session_broker is not None:
        _session_broker.ensure_running()  # a fault test before this one may have killed or stalled it
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
