"""Fault suite fixtures: a private Redis a test may stop, kill and restart, a ledger of known triggers, and
the table of results (fault, lost, duplicated, recovered without a person, time to recover).

Every experiment streams known events through real worker processes against the real broker and a real
redis-server of its own, then counts what each expected trigger got on the notifications topic.
`make test-faults` runs every experiment; `make test` runs the bounded core (the tests not marked `slow`).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamrec.dev_stack import free_port, start_redis
from streamrec.settings import Settings
from tests.faults.ledger import FaultRow

ROWS: list[FaultRow] = []


@dataclass
class PrivateRedis:
    """A redis-server on its own port: SIGSTOP/SIGCONT it, SIGKILL it, restart it (empty) on the same port."""

    port: int
    log_path: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stall(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def restart_empty(self) -> None:
        """Start a new server on the same port with no data (a Redis without persistence after a crash)."""
        if self.process.poll() is None:
            self.kill()
        self.process = start_redis(self.port, self.log_path)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    port = free_port()
    log_path = tmp_path / "redis" / "redis.log"
    server = PrivateRedis(port, log_path, start_redis(port, log_path))
    yield server
    server.stop()


@pytest.fixture
def fault_settings(settings: Settings, private_redis: PrivateRedis) -> Settings:
    """The test's isolated settings, on the private Redis, with short timeouts so a stall is seen quickly."""
    return settings.model_copy(
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
