"""The notifier's asyncio Redis client for a single server or a Redis Cluster, by the URL (as `redis_client`).

`redis+cluster://host:port` and `rediss+cluster://host:port` give `redis.asyncio.cluster.RedisCluster` (reached
through any node; `+cluster` dropped from the scheme), `redis://`, `rediss://` and `unix://` give
`redis.asyncio.Redis`. Scripts need nothing more: redis-py 8.1's async cluster client registers them, sends
EVALSHA to the node of the keys' slot and, on NOSCRIPT, loads the script on every master and calls again.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import AskError, ClusterError, RedisClusterException, RedisError, TryAgainError

from streamrec.redis_connection import parse_redis_url

AsyncRedisClient = aioredis.Redis | AsyncRedisCluster
# A cluster that cannot serve a slot now: an outage to wait out, though some of these are ResponseErrors
# (CLUSTERDOWN, TRYAGAIN, a redirection still moving) and one is not a RedisError at all (no node knows the slot).
CLUSTER_OUTAGES = (ClusterError, AskError, TryAgainError, RedisClusterException)
STORE_ERRORS = (RedisError, RedisClusterException)


def async_redis_client(url: str, **options: object) -> AsyncRedisClient:
    """`redis.asyncio.Redis` for a one-server URL, its `RedisCluster` for a `redis+cluster://` one."""
    cluster, plain = parse_redis_url(url)
    return AsyncRedisCluster.from_url(plain, **options) if cluster else aioredis.Redis.from_url(plain, **options)
