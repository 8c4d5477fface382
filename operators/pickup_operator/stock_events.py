"""Stock events between timer runs: the operator follows the live ``staff`` stream.

The worker appends a ``stock.changed`` event to the Redis stream ``live:staff`` for every
stock movement it reads from the products table's DynamoDB Stream (the same events the order
board shows). The operator reads that stream from its tail and marks each product it names
as changed; every resource's short check timer (``PICKUP_OPERATOR_EVENT_CHECK_SECONDS``) then
re-reads a changed product at once instead of waiting for its full interval. Events are only
a hint: a missed one (Redis down, operator restarting) is caught by the next full check.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pickup import live
from pickup.core.inventory import is_product_id

logger = logging.getLogger("pickup.operator.stock_events")

STOCK_CHANGED = "stock.changed"
BLOCK_MILLISECONDS = 4_000  # under the client's 5 s socket timeout
BATCH = 200
MAX_BACKOFF_SECONDS = 30.0


def changed_product(fields: Mapping[str, str]) -> str | None:
    """The product a live ``staff`` stream entry says changed stock, if it is such an entry."""
    if fields.get("type") != STOCK_CHANGED:
        return None
    try:
        data = json.loads(fields.get("data") or "")
    except ValueError:
        return None
    product_id = data.get("product_id") if isinstance(data, dict) else None
    return product_id if is_product_id(product_id) else None


class StockEventListener:
    """Calls ``on_change(product_id)`` for every ``stock.changed`` event appended from now on."""

    def __init__(self, redis: Redis, on_change: Callable[[str], None]) -> None:
        self._redis = redis
        self._on_change = on_change
        self._key = live.stream_key(live.STAFF)

    async def run(self) -> None:
        """Follow the stream until cancelled; Redis failures back off and resume."""
        last_id = "$"
        failures = 0
        while True:
            try:
                if last_id == "$":
                    # Start from the newest entry's id, so nothing appended while the first
                    # blocking read reconnects is skipped.
                    newest = await self._redis.xrevrange(self._key, count=1)
                    last_id = newest[0][0] if newest else "0-0"
                batches = await self._redis.xread(
                    {self._key: last_id}, count=BATCH, block=BLOCK_MILLISECONDS
                )
            except (RedisError, OSError) as error:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures)
                logger.warning(
                    "operator.stock_events_unavailable error=%s retry_in=%.1fs", error, delay
                )
                await asyncio.sleep(delay)
                continue
            if failures:
                logger.info("operator.stock_events_resumed")
                failures = 0
            for _key, entries in batches or ():
                for entry_id, fields in entries:
                    last_id = entry_id
                    product_id = changed_product(fields)
                    if product_id is not None:
                        self._on_change(product_id)
