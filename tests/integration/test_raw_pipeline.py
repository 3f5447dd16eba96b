"""`RawPipeline` on a real Redis: the server's own replies in order, errors raised after every reply is read (the
connection stays in step), and hiredis packing byte for byte what redis-py sends."""

from __future__ import annotations

import uuid

import pytest
import redis
from redis.connection import Connection
from redis.crc import key_slot

from streamrec.redis_connection import LuaScript, RawPipeline, ScriptCall, call_slot, hashed_part, pack_commands

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(redis_client: redis.Redis):
    prefix = f"test:raw:{uuid.uuid4().hex[:8]}:"
    yield prefix
    keys = list(redis_client.scan_iter(f"{prefix}*"))
    if keys:
        redis_client.delete(*keys)


def test_replies_come_back_raw_and_in_order(redis_client, prefix):
    pipe = RawPipeline(redis_client)
    pipe.execute_command("SADD", f"{prefix}s", "a", "b")
    pipe.execute_command("ZADD", f"{prefix}z", "GT", 5, "m")
    pipe.execute_command("ZADD", f"{prefix}z", "GT", 3, "m")  # GT: not moved back
    pipe.execute_command("ZINCRBY", f"{prefix}z", 0.1 + 0.2, "n")
    pipe.execute_command("SMEMBERS", f"{prefix}s")
    pipe.execute_command("ZREVRANGE", f"{prefix}z", 0, -1, "WITHSCORES")
    assert len(pipe) == 6
    added, first, second, incremented, members, ranked = pipe.execute()
    assert (added, first, second) == (2, 1, 0)
    assert float(incremented) == 0.1 + 0.2
    assert sorted(members) == [b"a", b"b"]
    assert list(ranked) in ([b"m", b"5", b"n", b"0.30000000000000004"],
                                   [[b"m", 5.0], [b"n", 0.30000000000000004]])
    assert len(pipe) == 0 and pipe.execute() == []


def test_an_error_reply_is_raised_after_every_reply_is_read(redis_client, prefix):
    pipe = RawPipeline(redis_client)
    pipe.execute_command("SET", f"{prefix}k", "text")
    pipe.execute_command("INCR", f"{prefix}k")  # not a number: an error reply
    pipe.execute_command("SET", f"{prefix}after", "1")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        pipe.execute()
    assert redis_client.get(f"{prefix}after") == b"1"  # the command after the error ran
    assert redis_client.ping()  # and the pooled connection holds no unread reply
    check = RawPipeline(redis_client)
    check.execute_command("GET", f"{prefix}k")
    assert check.execute() == [b"text"]


@pytest.mark.parametrize("command", [
    ("ZADD", "p:{i:item-1}:knn", "GT", 1796678188781, "session-ü"),
    ("ZINCRBY", "k", 0.30000000000000004, b"bytes"),
    ("EVALSHA", "abc", 2, "k1", "k2", -3, 1e-7, ""),
])
def test_hiredis_packs_what_redis_py_packs(command):
    connection = Connection()
    assert b"".join(pack_commands(connection, [command, command])) == b"".join(connection.pack_commands([command,
                                                                                                       command]))


@pytest.mark.parametrize("key", ["p:{u:7}:a", "{u:7}", "plain", "a{}b{c}", "{{x}}", "x{y", "é{ü}"])
def test_the_hashed_part_gives_redis_clusters_slot(key):
    assert key_slot(hashed_part(key).encode()) == key_slot(key.encode())
    assert call_slot(ScriptCall(LuaScript("return 1"), [key, key], [])) == key_slot(key.encode())
