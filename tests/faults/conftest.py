"""Fault suite fixtures: a private Redis a test may stop, kill and restart, a ledger of known triggers, and
the table of results (fault, lost, duplicated, recovered without a person, time to recover).

Every experiment streams known events through real worker processes against the real broker and a real
redis-server of its own, then counts what each expected trigger got on the notifications topic.
`make test-faults` runs every experiment; `make test` runs the bounded core (the tests not marked `slow`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamrec.dev_stack import TANSU, LocalRedis
from streamrec.settings import Settings
from tests.faults.ledger import FaultRow

ROWS: list[FaultRow] = []


@pytest.fixture
def private_redis(private_redis_server: Callable[..., LocalRedis]) -> LocalRedis:
    """A redis-server without persistence that the test may stall, kill and restart (it comes back empty)."""
    return private_redis_server()


@pytest.fixture(params=["at-least-once", "exactly-once"])
def delivery_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test's isolated settings in each delivery mode; exactly-once needs a broker with transactions."""
    if request.param == "exactly-once":
        broker = request.getfixturevalue("kafka_broker")
        if broker.kind == TANSU:
            pytest.skip("Tansu does not isolate transactions: exactly-once runs on Apache Kafka")
    return settings.model_copy(update={"delivery": request.param})


@pytest.fixture
def fault_settings(delivery_settings: Settings, private_redis: LocalRedis) -> Settings:
    """The test's isolated settings, on the private Redis, with short timeouts so a stall is seen quickly."""
    return delivery_settings.model_copy(
        update={
            "redis_url": private_redis.url,
            "redis_socket_timeout_s": 1.0,
            "redis_connect_timeout_s": 0.5,
            "outage_backoff_s": 0.1,
            "outage_backoff_max_s": 1.0,
        }
    )


@pytest.fixture
def fault_table() -> list[FaultRow]:
    """Experiments append their row here; the session prints the table and writes test-artifacts/faults.md."""
    return ROWS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    lines = FaultRow.markdown(ROWS)
    terminalreporter.write_sep("=", "fault suite")
    for line in lines:
        terminalreporter.write_line(line)
    out = Path(__file__).resolve().parents[2] / "test-artifacts" / "faults.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
