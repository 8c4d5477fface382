"""The customer status view cached in Redis; every status change invalidates it.

The cache is an optimisation only: a Redis outage makes lookups read PostgreSQL instead of
failing, and a failed invalidation is bounded by the TTL.
"""

from __future__ import annotations

import logging
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pickup.observability.metrics import CACHE_REQUESTS

logger = logging.getLogger("pickup.orders")

_HIT = CACHE_REQUESTS.labels("order_status", "hit")
_MISS = CACHE_REQUESTS.labels("order_status", "miss")


def status_key(order_id: uuid.UUID) -> str:
    return f"order-status:{order_id}"


async def cached_status(redis: Redis, order_id: uuid.UUID) -> str | None:
    try:
        cached = await redis.get(status_key(order_id))
    except (RedisError, OSError) as error:
        logger.warning("order.status_cache_unavailable error=%s", error)
        return None
    (_MISS if cached is None else _HIT).inc()
    return cached


async def store_status(redis: Redis, order_id: uuid.UUID, body: str, ttl_seconds: int) -> None:
    try:
        await redis.set(status_key(order_id), body, ex=ttl_seconds)
    except (RedisError, OSError) as error:
        logger.warning("order.status_cache_unavailable error=%s", error)


async def invalidate_status(redis: Redis, order_id: uuid.UUID) -> None:
    """Call after every status change of ``order_id`` (after its transaction committed)."""
    try:
        await redis.delete(status_key(order_id))
    except (RedisError, OSError) as error:
        logger.warning(
            "order.status_cache_invalidation_failed order_id=%s error=%s", order_id, error
        )
