"""The push-queue scripts on real Redis with far-future clocks and ids: Lua 5.1 prints 253402300799000 as
2.53402300799e+14, which Redis refuses as a stream id, and a Lua number holds only 53 bits of a 64-bit id."""

from __future__ import annotations

import uuid

import pytest
import redis

from consumers.notifier.push_keys import PushKeys, lua_source
from consumers.notifier.push_queue import PushQueue
from consumers.notifier.settings import NotifierSettings

pytestmark = pytest.mark.integration
YEAR_9999_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z


@pytest.fixture
def queue(redis_url: str):
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    client = redis.Redis.from_url(redis_url)
    yield PushQueue(client, prefix, NotifierSettings(pending_ttl_s=60, pending_max=3))
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def test_a_far_future_clock_still_queues_with_an_integer_stream_id(queue):
    result = queue.record("alice", "n-1", b'{"n": 1}', ["item:a"], YEAR_9999_MS)
    assert result.status == "queued"
    assert result.stream_id == f"{YEAR_9999_MS}-0"
    again = queue.record("alice", "n-2", b'{"n": 2}', ["item:b"], YEAR_9999_MS + 1)
    assert again.stream_id == f"{YEAR_9999_MS + 1}-0"
    assert queue.sweep(YEAR_9999_MS + 3_600_000) == (2, 0)  # the TTL cutoff is an id too


def test_a_queue_whose_last_id_is_far_in_the_future_keeps_its_ids_increasing(queue):
    keys = queue.keys
    queue.redis.xadd(keys.queue("bob"), {"n": b"from a clock in 9999"}, id=f"{YEAR_9999_MS}-4")
    result = queue.record("bob", "n-1", b'{"n": 1}', [], 1_800_000_000_000)
    assert (result.status, result.stream_id) == ("queued", f"{YEAR_9999_MS}-5")


def test_a_failed_append_records_nothing_so_the_redelivery_is_not_taken_for_a_duplicate(queue):
    keys = queue.keys
    top = 2**64 - 1
    queue.redis.xadd(keys.queue("carol"), {"n": b"x"}, id=f"{top}-{top}")  # no id can follow this one
    with pytest.raises(redis.ResponseError):
        queue.record("carol", "n-1", b'{"n": 1}', [], 1_800_000_000_000)
    assert queue.redis.zscore(keys.seen("carol"), "n-1") is None


def test_the_delivered_cursor_compares_64_bit_ids_exactly(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    keys = PushKeys(f"test:{uuid.uuid4().hex[:10]}:")
    advance = client.register_script(lua_source("advance_cursor"))
    try:
        # 2^53 + 1 and 2^53 are one number in Lua: a float comparison would move the cursor back.
        now_ms = 1_800_000_000_000
        assert advance(keys=keys.cursor_keys("dave"), args=["9007199254740993-0", 60_000, now_ms])[0] == \
            b"9007199254740993-0"
        assert advance(keys=keys.cursor_keys("dave"), args=["9007199254740992-7", 60_000, now_ms])[0] == \
            b"9007199254740993-0"
        top = f"{2**64 - 1}-{2**64 - 1}"
        assert advance(keys=keys.cursor_keys("dave"), args=[top, 60_000, now_ms])[0] == top.encode()
    finally:
        client.delete(*keys.cursor_keys("dave"))
