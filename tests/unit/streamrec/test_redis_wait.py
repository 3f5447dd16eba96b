"""A process started before its Redis waits for it (with backoff) instead of crash-looping."""

from __future__ import annotations

import threading

import pytest
import redis

from streamrec.redis_wait import wait_for_redis
from streamrec.settings import Settings

FAST = Settings(outage_backoff_s=0.001, outage_backoff_max_s=0.002)


class FlakyRedis:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.pings = 0

    def ping(self) -> bool:
        self.pings += 1
        if self.pings <= self.failures:
            raise redis.exceptions.ConnectionError("connection refused")
        return True


def test_waits_until_redis_answers():
    client = FlakyRedis(failures=3)
    wait_for_redis(client, FAST)
    assert client.pings == 4


def test_gives_up_only_when_asked_to_stop():
    stop = threading.Event()
    stop.set()
    with pytest.raises(redis.exceptions.ConnectionError):
        wait_for_redis(FlakyRedis(failures=10**6), FAST, stop)
