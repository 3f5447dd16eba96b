"""Wait for Redis at start-up: a process started before its Redis logs and retries, it does not crash-loop."""

from __future__ import annotations

import logging
import threading
import time

import redis

from streamrec.redis_connection import OUTAGE_ERRORS
from streamrec.settings import Settings

log = logging.getLogger(__name__)


def wait_for_redis(client: redis.Redis, settings: Settings, stop: threading.Event | None = None) -> None:
    """Block until `client` answers PING, backing off up to `outage_backoff_max_s`; re-raise once `stop` is set."""
    delay = settings.outage_backoff_s
    while True:
        try:
            client.ping()
            return
        except OUTAGE_ERRORS as error:
            if stop is not None and stop.is_set():
                raise
            log.error("waiting for Redis at %s: %r (next try in %.1fs)", settings.redis_url, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, settings.outage_backoff_max_s)
