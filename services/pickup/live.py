"""Live updates: events appended to Redis streams, fanned out by the SSE endpoints.

Every writer (checkout, worker, staff, stream consumer) calls :func:`publish` after its
commit. A stream per topic keeps a bounded history, so a client that reconnects with
``Last-Event-ID`` gets what it missed, and every API process reads the same streams, so
events reach subscribers whichever process they are connected to. Topics: ``staff`` (the
order board, stock and alerts) and ``order:<id>`` (one customer's order, no personal data).

Live updates are a convenience on top of the durable state in PostgreSQL and DynamoDB: a
Redis outage is logged and never fails the write that published.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("pickup.live")

STAFF = "staff"
ORDER_STREAM_TTL_SECONDS = 2 * 24 * 3600


def order_topic(order_id: uuid.UUID | str) -> str:
    return f"order:{order_id}"


def stream_key(topic: str) -> str:
    return f"live:{topic}"


async def publish(
    redis: Redis, topic: str, event_type: str, data: dict[str, Any], *, max_len: int = 1000
) -> str | None:
    """Append an event; returns its id (the SSE event id), or None if Redis is down."""
    key = stream_key(topic)
    fields = {"type": event_type, "data": json.dumps(data, separators=(",", ":"), default=str)}
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, fields, maxlen=max_len, approximate=True)
            if topic != STAFF:
                pipe.expire(key, ORDER_STREAM_TTL_SECONDS)
            event_id, *_ = await pipe.execute()
    except (RedisError, OSError) as error:
        logger.warning("live.publish_failed topic=%s type=%s error=%s", topic, event_type, error)
        return None
    return str(event_id)
