"""The reservation sweeper: pending orders whose reservation ran out become ``EXPIRED``.

Exactly once with any number of sweepers: candidates are read with ``FOR UPDATE SKIP
LOCKED`` (an order another process is changing right now is passed over), and each is expired
through ``change_status``, which locks the order row and checks the transition, so of two
sweepers reaching the same order only one moves it; the other gets ``InvalidTransition`` or
``StaleVersion`` and moves on. ``change_status`` releases the stock (guarded by the
reservation state), writes the history row and publishes ``order.expired``.

It also releases orphaned reservations: a checkout writes a reservation intent before it
reserves stock and deletes it in the transaction that saves the order, so an intent older than
``reservation_intent_grace_seconds`` belongs to a checkout that died in between (or is stuck:
its commit then finds the intent gone and gives up). Each is locked (``SKIP LOCKED``), its
stock released only if the products still hold it for that order, and deleted.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from pickup.core.errors import PickupError
from pickup.core.inventory import StockLine
from pickup.core.orders import Actor, InvalidTransition, OrderStatus
from pickup.orders import repository as orders_repository
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


async def release_orphaned_reservations(
    resources: Resources, *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> int:
    """Release the stock of checkouts that reserved it and died before saving their order;
    how many reservations this call released (intents whose stock was never held are only
    deleted)."""
    now = now or datetime.now(UTC)
    older_than = now - timedelta(seconds=resources.settings.reservation_intent_grace_seconds)
    released = 0
    failed = False
    while not failed:
        async with resources.sessions.begin() as session:
            intents = await orders_repository.lapsed_intents(session, older_than, batch_size)
            for intent in intents:
                lines = [StockLine.model_validate(line) for line in intent.lines]
                try:
                    held = await resources.inventory.release_held(
                        lines, order_id=str(intent.order_id)
                    )
                except PickupError as error:  # DynamoDB unreachable: the next sweep retries
                    logger.warning(
                        "reservation.orphan_release_failed order_id=%s error=%s",
                        intent.order_id,
                        error,
                    )
                    failed = True
                    continue
                await session.delete(intent)
                if held:
                    released += 1
                    logger.warning(
                        "reservation.orphan_released order_id=%s lines=%s",
                        intent.order_id,
                        [(line.product_id, line.quantity) for line in lines],
                    )
        if len(intents) < batch_size:
            break
    return released


async def run_sweeper(resources: Resources, interval: float, stopping: asyncio.Event) -> None:
    """Sweep every ``interval`` seconds until ``stopping`` is set."""
    while not stopping.is_set():
        for sweep in (sweep_expired_reservations, release_orphaned_reservations):
            try:
                await sweep(resources)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database outage must not end the loop
                logger.exception("sweeper.failed")
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
        except TimeoutError:
            pass
