"""The Redis URL picks one server or a cluster; the script runner groups a batch by node and answers in order.

The runner is driven here through fake connections (what it writes, what each node answers); the real cluster's
behaviour is in tests/integration/test_redis_cluster.py.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, NoScriptError, ResponseError

from streamrec.redis_connection import CrossSlotCall, LuaScript, ScriptCall, ScriptRunner, call_slot, redis_client


# --- the URL ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://h:6380", "unix:///tmp/redis.sock?db=2"])
def test_one_server_urls_give_a_plain_client_with_the_options(url: str) -> None:
    client = redis_client(url, socket_timeout=1.5)
    assert type(client) is redis.Redis
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 1.5


@pytest.mark.parametrize(("url", "passed"), [
    ("redis+cluster://10.0.0.5:7000", "redis://10.0.0.5:7000"),
    ("rediss+cluster://user:s3cret@node.example:7000", "rediss://user:s3cret@node.example:7000"),
    ("REDIS+CLUSTER://h:7000/0", "redis://h:7000/0"),
])
def test_cluster_urls_give_a_cluster_client_at_the_plain_url(monkeypatch, url: str, passed: str) -> None:
    seen: dict[str, object] = {}

    def from_url(url: str, **options: object) -> str:
        seen.update(url=url, **options)
        return "cluster"

    monkeypatch.setattr(RedisCluster, "from_url", staticmethod(from_url))
    assert redis_client(url, socket_timeout=2.0) == "cluster"
    assert seen == {"url": passed, "socket_timeout": 2.0}


@given(scheme=st.from_regex(r"[a-z][a-z0-9+.-]{0,12}", fullmatch=True), password=st.text("abcxyz019", min_size=6))
def test_an_unknown_scheme_is_refused_without_repeating_the_password(scheme: str, password: str) -> None:
    if scheme in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"):
        return
    with pytest.raises(ValueError, match="redis\\+cluster") as refused:
        redis_client(f"{scheme}://user:{password}@host:6379")
    assert password not in str(refused.value)


# --- slots ----------------------------------------------------------------------------------------------
SCRIPT = LuaScript("return KEYS")
OTHER = LuaScript("return ARGV")


def test_a_call_whose_keys_share_a_hash_tag_has_their_slot() -> None:
    call = ScriptCall(SCRIPT, ["p:{u:7}:a", "p:{u:7}:b"], [])
    assert call_slot(call) == key_slot(b"u:7")
    assert call_slot(ScriptCall(SCRIPT, [], [])) == 0


def test_a_call_across_slots_is_refused_naming_its_keys_before_anything_is_sent() -> None:
    call = ScriptCall(SCRIPT, ["p:{u:1}:seen", "p:co:item-9"], [])
    with pytest.raises(CrossSlotCall, match=r"p:\{u:1\}:seen.*p:co:item-9"):
        call_slot(call)
    node = FakeNode("single")
    with pytest.raises(CrossSlotCall):
        ScriptRunner(FakeSingle(node)).run([ScriptCall(SCRIPT, ["{u:2}"], []), call])
    assert node.written == []


# --- fakes ------------------------------------------------------------------------------------------------
class FakeConnection:
    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.replies: list[object] = []

    def pack_commands(self, commands: list[tuple]) -> list[tuple]:
        return commands

    def send_packed_command(self, commands: list[tuple]) -> None:
        if self.node.down:
            raise redis.exceptions.ConnectionError("refused")
        self.node.written.append(list(commands))
        self.replies = [self.node.answer(command) for command in commands]

    def read_response(self) -> object:
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def disconnect(self) -> None:
        self.replies = []


class FakeNode:
    """A node's pool and server: it knows scripts once loaded and answers EVALSHA with (node, first key)."""

    def __init__(self, name: str, moved: dict[int, str] | None = None) -> None:
        self.name = name
        self.scripts: set[str] = set()
        self.written: list[list[tuple]] = []
        self.moved = moved or {}  # slot -> "host:port" it answers MOVED to
        self.asks: dict[int, str] = {}  # slot -> "host:port" it answers ASK to (a slot being migrated)
        self.down = False
        self.connection_pool = self

    def get_connection(self) -> FakeConnection:
        return FakeConnection(self)

    def release(self, connection: FakeConnection) -> None:
        pass

    def answer(self, command: tuple) -> object:
        if command[:2] == ("SCRIPT", "LOAD"):
            self.scripts.add(LuaScript(command[2]).sha)
            return "sha"
        if command == ("ASKING",):
            return "OK"
        _, sha, _, key, *_ = command
        slot = key_slot(key.encode())
        if slot in self.moved:
            host, port = self.moved[slot].split(":")
            return MovedError(f"{slot} {host}:{port}")
        if slot in self.asks:
            return AskError(f"{slot} {self.asks[slot]}")
        if sha not in self.scripts:
            return NoScriptError("NOSCRIPT No matching script")
        return (self.name, key)


class FakeSingle(redis.Redis):
    def __init__(self, node: FakeNode) -> None:
        self.connection_pool = node


class FakeNodesManager:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.refreshed = 0

    def get_node_from_slot(self, slot: int) -> ClusterNode:
        return self.cluster.owner(slot)

    def move_slot(self, error: MovedError) -> None:
        self.cluster.slot_owner[error.slot_id] = f"{error.host}:{error.port}"

    def initialize(self) -> None:
        self.refreshed += 1


class FakeCluster(RedisCluster):
    """Three nodes; slots are dealt by `slot % 3` unless moved."""

    def __init__(self) -> None:
        self.nodes = {f"10.0.0.{i}:7000": FakeNode(f"10.0.0.{i}:7000") for i in range(3)}
        self.slot_owner: dict[int, str] = {}
        self.nodes_manager = FakeNodesManager(self)

    def owner(self, slot: int) -> ClusterNode:
        name = self.slot_owner.get(slot) or list(self.nodes)[slot % 3]
        host, port = name.split(":")
        return ClusterNode(host, int(port))

    def get_redis_connection(self, node: ClusterNode) -> FakeNode:
        return self.nodes[node.name]

    def get_node(self, host: str, port: int) -> ClusterNode:
        return ClusterNode(host, port)


def _calls(users: range, script: LuaScript = SCRIPT) -> list[ScriptCall]:
    return [ScriptCall(script, [f"p:{{u:{u}}}:s", f"p:{{u:{u}}}:r"], [u]) for u in users]


# --- the runner ---------------------------------------------------------------------------------------------
def test_on_one_server_a_batch_is_one_pipeline_loading_its_scripts_once() -> None:
    node = FakeNode("single")
    runner = ScriptRunner(FakeSingle(node))
    calls = _calls(range(5)) + _calls(range(5, 7), OTHER)
    assert runner.run(calls) == [("single", c.keys[0]) for c in calls]
    assert len(node.written) == 1
    assert [c[:2] for c in node.written[0][:2]] == [("SCRIPT", "LOAD"), ("SCRIPT", "LOAD")]
    runner.run(calls)
    assert len(node.written) == 2 and all(c[0] == "EVALSHA" for c in node.written[1])  # known loaded: no body sent


def test_a_restarted_server_answering_noscript_gets_the_script_again_and_the_calls_once_more() -> None:
    node = FakeNode("single")
    runner = ScriptRunner(FakeSingle(node))
    runner.run(_calls(range(3)))
    node.scripts.clear()  # a restart
    assert runner.run(_calls(range(3))) == [("single", f"p:{{u:{u}}}:s") for u in range(3)]
    assert [c[0] for c in node.written[-1]] == ["SCRIPT", "EVALSHA", "EVALSHA", "EVALSHA"]


def test_on_a_cluster_each_node_gets_one_pipeline_and_results_come_back_in_the_callers_order() -> None:
    cluster = FakeCluster()
    calls = _calls(range(40))
    results = ScriptRunner(cluster).run(calls)
    assert [key for _, key in results] == [c.keys[0] for c in calls]
    for node_name, key in results:
        assert cluster.owner(key_slot(key.encode())).name == node_name
    per_node = defaultdict(int)
    for name, node in cluster.nodes.items():
        assert len(node.written) == 1
        per_node[name] = sum(1 for c in node.written[0] if c[0] == "EVALSHA")
    assert sum(per_node.values()) == 40 and min(per_node.values()) > 0


def test_a_moved_slot_is_followed_to_its_new_node_in_the_same_call() -> None:
    cluster = FakeCluster()
    runner = ScriptRunner(cluster)
    calls = _calls(range(12))
    runner.run(calls)
    slot = key_slot(b"u:4")
    old = cluster.owner(slot).name
    new = next(name for name in cluster.nodes if name != old)
    cluster.nodes[old].moved[slot] = new
    results = runner.run(calls)
    assert results[4] == (new, "p:{u:4}:s")
    assert [key for _, key in results] == [c.keys[0] for c in calls]


def test_an_ask_sends_the_call_to_the_migrating_node_after_asking_and_keeps_the_slot_map() -> None:
    cluster = FakeCluster()
    slot = key_slot(b"u:5")
    old = cluster.owner(slot).name
    new = next(name for name in cluster.nodes if name != old)
    cluster.nodes[old].asks[slot] = new
    results = ScriptRunner(cluster).run(_calls(range(8)))
    assert results[5] == (new, "p:{u:5}:s")
    assert ("ASKING",) in cluster.nodes[new].written[-1]
    assert cluster.owner(slot).name == old


def test_a_node_that_stays_down_fails_the_batch_as_an_outage_after_the_retries() -> None:
    cluster = FakeCluster()
    runner = ScriptRunner(cluster, retries=2)
    runner.run(_calls(range(9)))
    next(iter(cluster.nodes.values())).down = True
    with pytest.raises(redis.exceptions.ConnectionError):
        runner.run(_calls(range(9)))
    assert cluster.nodes_manager.refreshed == 2  # the slot map was read again before each retry


def test_a_script_error_is_raised_after_the_rest_of_the_batch_ran() -> None:
    node = FakeNode("single")
    runner = ScriptRunner(FakeSingle(node))
    runner.run(_calls(range(1)))

    def answer(command: tuple, plain=node.answer) -> object:
        return ResponseError("apply_event: bad") if command[-1] == 1 else plain(command)

    node.answer = answer
    with pytest.raises(ResponseError, match="apply_event: bad"):
        runner.run(_calls(range(3)))
    assert sum(1 for c in node.written[-1] if c[0] == "EVALSHA") == 3
