"""The reservation sweeper: pending orders whose reservation ran out become ``EXPIRED``.

Exactly once with any number of sweepers: candidates are read with ``FOR UPDATE SKIP
LOCKED`` (an order another process is changing right now is passed over), and each is expired
through ``change_status``, which locks the order row and checks the transition, so of two
sweepers reaching the same order only one moves it; the other gets ``InvalidTransition`` or
``StaleVersion`` and moves on. ``change_status`` releases the stock (guarded by the
reservation state), writes the history row and publishes ``order.expired``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from pickup.core.errors import PickupError
from pickup.core.orders import Actor, InvalidTransition, OrderStatus
from pickup.orders.service import OrderNotFound
from pickup.orders.transitions import StaleVersion, change_status
from pickup.runtime import Resources
from pickup.worker import repository

logger = logging.getLogger("pickup.worker.sweeper")

BATCH_SIZE = 100
NOTE = "reservation expired before the order was confirmed"


async def sweep_expired_reservations(
    resources: Resources, *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> int:
    """Expire every pending order whose reservation ran out by ``now``; how many this call did."""
    now = now or datetime.now(UTC)
    expired = 0
    seen: set[object] = set()
    while True:
        async with resources.sessions.begin() as session:
            candidates = await repository.expired_reservations(session, now, batch_size)
        fresh = [(order_id, version) for order_id, version in candidates if order_id not in seen]
        if not fresh:
            return expired
        for order_id, version in fresh:
            seen.add(order_id)
            try:
                await change_status(
                    resources,
                    order_id,
                    OrderStatus.EXPIRED,
                    actor=Actor.SYSTEM,
                    expected_version=version,
                    note=NOTE,
                    now=now,
                )
            except (InvalidTransition, StaleVersion, OrderNotFound):
                continue  # confirmed, cancelled or expired by someone else meanwhile
            except PickupError as error:  # e.g. DynamoDB unreachable: the next sweep retries
                logger.warning("order.expire_failed order_id=%s error=%s", order_id, error)
                continue
            expired += 1
            logger.info("order.expired order_id=%s", order_id)
        if len(candidates) < batch_size:
            return expired


async def run_sweeper(resources: Resources, interval: float, stopping: asyncio.Event) -> None:
    """Sweep every ``interval`` seconds until ``stopping`` is set."""
    while not stopping.is_set():
        try:
            await sweep_expired_reservations(resources)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database outage must not end the loop
            logger.exception("sweeper.failed")
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
        except TimeoutError:
            pass
