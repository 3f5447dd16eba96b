"""One Redis client for a single server or a Redis Cluster, and a batch runner for Lua scripts that works on both.

`STREAMREC_REDIS_URL` picks the kind: `redis://`, `rediss://` and `unix://` are one server; `redis+cluster://host:port`
and `rediss+cluster://host:port` are a cluster reached through any of its nodes.

redis-py's cluster pipeline refuses scripts (`evalsha`, `script_load` and `eval` are blocked on it), so
`ScriptRunner` sends a batch's EVALSHA calls itself: grouped by the node that owns each call's slot, written to
every node before any reply is read (one round trip per node per batch, the nodes working side by side), results
handed back in the caller's order. Scripts must be idempotent (by event id): a call is sent again after a
connection error, when it may have run already.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)

try:
    import hiredis
except ImportError:  # redis-py packs and parses in Python without it
    hiredis = None

log = logging.getLogger(__name__)

RedisClient = redis.Redis | RedisCluster
SINGLE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# What a loop waits out as an outage, from one server or a cluster: no answer, a cluster down or failing over (no
# master for a slot, TRYAGAIN during a resharding, redirections that never settle, a slot no node serves yet).
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    *_CONNECTION_ERRORS, ClusterDownError, TryAgainError, redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
)


# How many hash tags a piece of global state is split over (by `shard_of` its item, session or user), so a Redis
# Cluster spreads its keys and their writes over the masters; up to 16 masters each hold some of each.
SHARDS = 16


def shard_of(name: str) -> int:
    """A stable shard of an id (a CRC32: Python's hash() differs between processes)."""
    return zlib.crc32(name.encode()) % SHARDS


def parse_redis_url(url: str) -> tuple[bool, str]:
    """(is it a cluster, the URL redis-py takes): `redis+cluster://h:p` is a cluster reached as `redis://h:p`."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in CLUSTER_SCHEMES:
        return True, CLUSTER_SCHEMES[scheme] + url[len(scheme):]
    if scheme in SINGLE_SCHEMES:
        return False, url
    # The URL itself is not repeated: it may hold a password.
    raise ValueError(f"Redis URL scheme {scheme!r} is not one of {', '.join(SINGLE_SCHEMES)} (one server) or "
                     f"{', '.join(CLUSTER_SCHEMES)} (a cluster)")


def redis_client(url: str, **options: object) -> RedisClient:
    """`redis.Redis` for a one-server URL, `RedisCluster` for a `redis+cluster://` one; options go to the client."""
    cluster, plain = parse_redis_url(url)
    return RedisCluster.from_url(plain, **options) if cluster else redis.Redis.from_url(plain, **options)


def is_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)


class CrossSlotCall(ValueError):
    """A script call whose keys lie in more than one cluster slot: no cluster could run it."""


@dataclass(frozen=True)
class LuaScript:
    """A script's source and SHA1, known without a server (the runner loads it where it is missing)."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


@dataclass(frozen=True)
class ScriptCall:
    script: LuaScript
    keys: Sequence[str]
    args: Sequence[object]


def hashed_part(key: str) -> str:
    """The part of a key Redis Cluster hashes to its slot: the first non-empty `{...}`, else the whole key."""
    start = key.find("{")
    if start > -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def call_slot(call: ScriptCall) -> int:
    """The one slot of a call's keys (slot 0 for a call without keys), or `CrossSlotCall` naming them.

    A call's keys mostly share one hash tag: the slot is computed once per distinct tag, not once per key."""
    slots = {key_slot(part.encode()) for part in {hashed_part(key) for key in call.keys}}
    if len(slots) > 1:
        raise CrossSlotCall(f"script {call.script.sha[:12]}: keys {list(call.keys)} lie in slots {sorted(slots)}; "
                            "give them one hash tag ({...}) or split the script")
    return slots.pop() if slots else 0


class ScriptRunner:
    """Runs a batch of script calls with one pipelined round trip per node (one server: one node).

    A reply of MOVED or ASK, a connection error (the slot map is refreshed) or NOSCRIPT (a restarted node: the
    script is loaded in the next round trip) sends the affected calls again, up to `retries` times; what still
    fails is raised, a cluster that cannot serve a slot as `redis.exceptions.ConnectionError` (an outage).
    The calls of one slot keep their order, except after a node lost only some of the batch's scripts.
    """

    def __init__(self, client: RedisClient, retries: int = 2) -> None:
        self.client = client
        self.retries = retries
        self._loaded: set[tuple[str, str]] = set()  # (node name, sha) known to be loaded there

    def run(self, calls: Sequence[ScriptCall]) -> list[object]:
        """Each call's reply, in the order of `calls`; the first error (in that order) is raised."""
        slots = [call_slot(call) for call in calls]  # before anything is sent
        results: list[object] = [None] * len(calls)
        asked: dict[int, ClusterNode] = {}  # call -> node that answered ASK for it
        todo = list(range(len(calls)))
        for attempt in range(self.retries + 1):
            batches = self._batches(todo, slots, asked)
            for batch in batches:
                batch.write(calls, self._loaded)
            retry: list[int] = []
            for batch in batches:
                batch.read(self._loaded)
                retry += self._settle(batch, results, asked, final=attempt == self.retries)
            if not retry:
                break
            todo = sorted(retry)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise _as_outage(errors[0])
        return results

    def _batches(self, todo: list[int], slots: list[int], asked: dict[int, ClusterNode]) -> list[_NodeBatch]:
        by_node: dict[tuple[str, bool], _NodeBatch] = {}
        for index in todo:
            ask = index in asked
            node, name = self._node(slots[index], asked.get(index))
            by_node.setdefault((name, ask), _NodeBatch(node, name, asking=ask)).indices.append(index)
        return list(by_node.values())

    def _node(self, slot: int, ask: ClusterNode | None) -> tuple[redis.Redis, str]:
        if not is_cluster(self.client):
            return self.client, "single"
        cluster = self.client
        target = cluster.nodes_manager.get_node_from_slot(slot) if ask is None else ask
        return cluster.get_redis_connection(target), target.name

    def _settle(
        self, batch: _NodeBatch, results: list[object], asked: dict[int, ClusterNode], final: bool
    ) -> list[int]:
        """Record the batch's replies; return the calls to send again."""
        retry: list[int] = []
        refresh = False
        for index, reply in zip(batch.indices, batch.replies, strict=True):
            asked.pop(index, None)
            results[index] = reply
            if isinstance(reply, NoScriptError):
                self._loaded -= {loaded for loaded in self._loaded if loaded[0] == batch.name}  # restarted: all gone
            elif isinstance(reply, MovedError):  # before AskError: redis-py derives MOVED from ASK
                self.client.nodes_manager.move_slot(reply)
            elif isinstance(reply, AskError):
                asked[index] = self.client.get_node(reply.host, reply.port) or ClusterNode(reply.host, reply.port)
            elif isinstance(reply, (*_CONNECTION_ERRORS, ClusterDownError, TryAgainError)):
                refresh = True
            else:
                continue
            retry.append(index)
        if refresh and is_cluster(self.client) and not final:
            try:
                self.client.nodes_manager.initialize()
            except (redis.exceptions.RedisError, RedisClusterException) as error:
                log.warning("refreshing the cluster's slot map failed: %r", error)
        return retry


class _NodeBatch:
    """The calls bound for one node: written as one pipeline, read back in order."""

    def __init__(self, node: redis.Redis, name: str, asking: bool) -> None:
        self.node, self.name, self.asking = node, name, asking
        self.indices: list[int] = []
        self.replies: list[object] = []
        self._loads: list[LuaScript] = []
        self._connection = None
        self._error: Exception | None = None

    def write(self, calls: Sequence[ScriptCall], loaded: set[tuple[str, str]]) -> None:
        commands: list[tuple[object, ...]] = []
        for index in self.indices:
            script = calls[index].script
            if (self.name, script.sha) not in loaded and script not in self._loads:
                self._loads.append(script)  # loaded ahead of its first call, in the same round trip
                commands.append(("SCRIPT", "LOAD", script.source))
        for index in self.indices:
            call = calls[index]
            if self.asking:
                commands.append(("ASKING",))
            commands.append(("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args))
        try:
            self._connection = self.node.connection_pool.get_connection()
            self._connection.send_packed_command(pack_commands(self._connection, commands))
        except _CONNECTION_ERRORS as error:
            self._error = error

    def read(self, loaded: set[tuple[str, str]]) -> None:
        """Read every reply (an error reply is the call's result); a lost connection fails the calls not read."""
        connection, replies = self._connection, []
        try:
            if self._error is None:
                for script in self._loads:
                    try:
                        connection.read_response()
                        loaded.add((self.name, script.sha))
                    except ResponseError:
                        pass  # its calls answer NOSCRIPT, and the next round loads it again
                for _ in self.indices:
                    if self.asking:
                        _reply_or_error(connection)
                    replies.append(_reply_or_error(connection))
        except _CONNECTION_ERRORS as error:
            self._error = error
            connection.disconnect()  # unread replies would be the next caller's
        finally:
            if connection is not None:
                self.node.connection_pool.release(connection)
        self.replies = replies + [self._error] * (len(self.indices) - len(replies))


def pack_commands(connection: redis.connection.Connection, commands: Sequence[Sequence[object]]) -> list[bytes]:
    """The commands as the chunks `send_packed_command` sends: packed by hiredis where it is installed (a third of
    redis-py's time per command) for redis-py's own connections, else by the connection itself."""
    if hiredis is not None and isinstance(connection, redis.connection.AbstractConnection):
        return [b"".join(map(hiredis.pack_command, commands))]
    return connection.pack_commands(commands)


class RawPipeline:
    """Commands sent in one round trip, their replies as the server gave them (no redis-py reply conversion).

    On one server, the commands are packed by `pack_commands` and the replies read straight off one pooled
    connection: redis-py's pipeline cost some 5 µs of the worker's CPU per command to queue, pack and convert, and the
    streaming models send several commands per event. A cluster client gets redis-py's cluster pipeline, which
    routes each command to its slot's node (its replies are converted: a set where the server sent an array, so
    read replies as iterables). An error reply raises the first one, after every reply is read."""

    def __init__(self, client: RedisClient) -> None:
        self.client = client
        self.commands: list[tuple[object, ...]] = []

    def execute_command(self, *args: object) -> None:
        """Queue one command (the name redis-py's pipelines give it, so helpers that queue take either)."""
        self.commands.append(args)

    def __len__(self) -> int:
        return len(self.commands)

    def execute(self) -> list:
        commands, self.commands = self.commands, []
        if not commands:
            return []
        if is_cluster(self.client):
            pipe = self.client.pipeline(transaction=False)
            for args in commands:
                pipe.execute_command(*args)
            return pipe.execute()
        pool = self.client.connection_pool
        connection = pool.get_connection()
        packed = pack_commands(connection, commands)

        def send_and_read() -> list:
            connection.send_packed_command(packed)
            return [_reply_or_error(connection) for _ in commands]

        try:  # retried as redis-py retries its pipelines: on a new connection, after a broken one is dropped
            replies = connection.retry.call_with_retry(send_and_read, lambda error: connection.disconnect())
        except _CONNECTION_ERRORS:
            connection.disconnect()  # unread replies would be the next caller's
            raise
        finally:
            pool.release(connection)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies


def _reply_or_error(connection: redis.connection.Connection) -> object:
    try:
        return connection.read_response()
    except ResponseError as error:
        return error


def _as_outage(error: object) -> Exception:
    """A cluster that cannot serve a slot now is an outage to wait out, like a server that does not answer."""
    if isinstance(error, ClusterDownError | TryAgainError | MovedError | AskError):
        outage = redis.exceptions.ConnectionError(f"the cluster cannot serve the call now: {error}")
        outage.__cause__ = error
        return outage
    return error  # type: ignore[return-value]
