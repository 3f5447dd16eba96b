"""A local Redis Cluster on this machine: N masters (and replicas) in a folder, for the dev stack, benchmarks and tests.

Each node gets its own client and cluster-bus ports (Redis 7's `cluster-port`, so no port + 10000 clash) and no
persistence: a killed master restarted on its `nodes.conf` rejoins with its slots and comes back empty, without
the scripts it had loaded. `redis-cli --cluster create` joins them (Debian's redis-tools, beside redis-server).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from streamrec.dev_stack import free_port, redis_server_binary, wait_for_port

NODE_TIMEOUT_MS = 2000  # how long before the others call a silent node failed (and promote its replica)


@dataclass
class ClusterNodeProcess:
    port: int
    bus_port: int
    data_dir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> ClusterNodeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port),
             "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
             "--save", "", "--appendonly", "no", "--dir", str(self.data_dir.resolve()),
             "--logfile", str((self.data_dir / "redis.log").resolve())],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port, 15, self.process)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


@dataclass
class LocalRedisCluster:
    nodes: list[ClusterNodeProcess]
    replicas: int

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def masters(self) -> list[ClusterNodeProcess]:
        """The nodes that serve slots now (after a failover, a promoted replica is one)."""
        live = [n for n in self.nodes if n.process.poll() is None]
        return [n for n in live if n.client().info("replication")["role"] == "master"]

    def node_of(self, key: str) -> ClusterNodeProcess:
        slot = key_slot(key.encode())
        for node in self.nodes:
            if node.process.poll() is not None:
                continue
            for start, end, *owners in node.client().execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = owners[0][1]
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no live node knows slot {slot}")

    def wait_ok(self, timeout_s: float = 30) -> None:
        """Until every live node reports the cluster healthy and agrees on who owns every slot, a live node each."""

        def healthy() -> bool:
            live = [n for n in self.nodes if n.process.poll() is None]
            states = [n.client().cluster("info")["cluster_state"] for n in live]
            views = [sorted((s, e, o[1]) for s, e, o, *_ in n.client().execute_command("CLUSTER", "SLOTS"))
                     for n in live]
            owners = {port for view in views for *_, port in view}
            return (all(state == "ok" for state in states) and all(view == views[0] for view in views)
                    and owners <= {n.port for n in live})

        _poll_until(healthy, timeout_s, "the local Redis Cluster did not become healthy")

    def wait_replicas_online(self, timeout_s: float = 30) -> None:
        """Until every master has `replicas` replicas whose first sync finished: a replica that never synced cannot
        take over (Redis refuses: "disconnected from master for longer than allowed")."""

        def synced() -> bool:
            info = [node.client().info("replication") for node in self.masters()]
            online = [sum(1 for key, value in i.items() if key.startswith("slave") and isinstance(value, dict)
                          and value.get("state") == "online") for i in info]
            return bool(info) and all(count >= self.replicas for count in online)

        _poll_until(synced, timeout_s, "the local Redis Cluster's replicas did not finish their first sync")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _poll_until(check: Callable[[], bool], timeout_s: float, failure: str) -> None:
    """Call `check` every 0.1 s until it holds (a Redis error counts as not yet), else raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except redis.exceptions.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(failure)
        time.sleep(0.1)


def redis_cli_binary() -> str:
    """redis-cli beside the redis-server in use (the cluster is created with it)."""
    beside = Path(redis_server_binary()).with_name("redis-cli")
    found = str(beside) if beside.exists() else shutil.which("redis-cli")
    if found is None:
        raise FileNotFoundError("redis-cli not found: install Debian's redis-server (scripts/install-redis.sh)")
    return found


def start_cluster(root: Path, masters: int = 3, replicas: int = 0) -> LocalRedisCluster:
    """Start `masters` masters (with `replicas` replicas each) under `root` and join them into one cluster."""
    nodes = [ClusterNodeProcess(free_port(), free_port(), root / f"node-{i}").start()
             for i in range(masters * (1 + replicas))]
    cluster = LocalRedisCluster(nodes, replicas)
    try:
        subprocess.run(
            [redis_cli_binary(), "--cluster", "create", *(n.address for n in nodes),
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        cluster.wait_ok()
        if replicas:
            cluster.wait_replicas_online()
    except BaseException:
        cluster.stop()
        raise
    return cluster
