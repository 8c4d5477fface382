"""What the platform does when a part of it fails, on real services.

- A checkout killed between its stock reservation and its order commit leaves a reservation
  intent; the sweeper releases that stock once, after a grace period, and never releases a
  reservation that did not happen.
- A checkout stuck past the grace period finds its intent gone and gives up with a 503,
  so the stock the sweeper released is never sold twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from pickup.adapters.orm import Order, ReservationIntent
from pickup.core.inventory import StockLine
from pickup.orders import repository
from pickup.orders.schemas import CheckoutRequest
from pickup.orders.service import ReservationLapsed, place_order
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.sweeper import release_orphaned_reservations
from tests.integration.test_worker import eventually, open_shop, pipeline_settings
from tests.services import ROOT, Services

GRACE = 30


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(make_settings, reservation_intent_grace_seconds=GRACE)


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    async with open_shop(shop_settings) as resources:
        yield resources


async def stock(resources: Resources, product_id: str) -> tuple[int, int, int]:
    item = await resources.inventory.get_product(product_id, consistent_read=True)
    assert item is not None
    return item.on_hand, item.reserved, item.available


async def counts(resources: Resources) -> tuple[int, int]:
    """(orders, reservation intents) in PostgreSQL."""
    async with resources.sessions() as session:
        orders = await session.scalar(select(func.count()).select_from(Order))
        intents = await session.scalar(select(func.count()).select_from(ReservationIntent))
    return int(orders or 0), int(intents or 0)


def after_grace() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=GRACE + 1)


def checkout_request(items: list[tuple[str, int]]) -> CheckoutRequest:
    return CheckoutRequest.model_validate(
        {
            "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items],
        }
    )


async def lock_orders(database_url: str) -> asyncpg.Connection:
    """A connection holding the orders table: checkouts block on their order insert."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("BEGIN")
    await conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    return conn


async def waiting_on_a_lock(conn: asyncpg.Connection) -> bool:
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    return bool(waiting)


CHECKOUT_SCRIPT = """
import asyncio, json, os
from pickup.orders.schemas import CheckoutRequest
from pickup.orders.service import place_order
from pickup.runtime import Resources
from pickup.settings import load_settings

async def main():
    settings = load_settings(**json.loads(os.environ["CHECKOUT_SETTINGS"]))
    request = CheckoutRequest.model_validate(json.loads(os.environ["CHECKOUT_REQUEST"]))
    async with Resources.open(settings) as resources:
        await place_order(resources, request, idempotency_key="killed", cart_id=None)

asyncio.run(main())
"""


async def test_a_checkout_killed_between_reserving_and_saving_has_its_stock_released_once(
    shop: Resources, shop_settings: Settings, services: Services, database_url: str
) -> None:
    holder = await lock_orders(database_url)
    overrides = {
        "env": "test",
        "database_url": database_url,
        "redis_url": services.redis_url,
        "aws_endpoint_url": services.aws_endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "resource_prefix": shop_settings.resource_prefix,
        "opening_hours": shop_settings.opening_hours,
        "slot_capacity": shop_settings.slot_capacity,
    }
    request = {
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"product_id": "croissant", "quantity": 2}],
    }
    env = {
        **os.environ,
        "CHECKOUT_SETTINGS": json.dumps(overrides),
        "CHECKOUT_REQUEST": json.dumps(request),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHECKOUT_SCRIPT, cwd=ROOT, env=env
    )
    try:

        async def reserved() -> bool:
            return await stock(shop, "croissant") == (30, 2, 28)

        async def blocked_on_the_order_insert() -> bool:
            return await waiting_on_a_lock(holder)

        await eventually(reserved, within=30)
        await eventually(blocked_on_the_order_insert, within=30)
        process.send_signal(signal.SIGKILL)  # between the reservation and the commit
        await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await holder.execute("ROLLBACK")
        await holder.close()

    async def settled() -> bool:
        return await counts(shop) == (0, 1)

    await eventually(settled)  # the dead checkout's transaction is rolled back: no order
    assert await stock(shop, "croissant") == (30, 2, 28)  # the reservation it left behind

    assert await release_orphaned_reservations(shop) == 0  # within its grace: left alone
    assert await release_orphaned_reservations(shop, now=after_grace()) == 1
    assert await stock(shop, "croissant") == (30, 0, 30)
    assert await counts(shop) == (0, 0)
    assert await release_orphaned_reservations(shop, now=after_grace()) == 0  # once


async def test_an_intent_whose_reservation_never_happened_releases_nothing(
    shop: Resources,
) -> None:
    # Someone else's real reservation, so a wrong release would not be refused by DynamoDB.
    await place_order(
        shop, checkout_request([("croissant", 3)]), idempotency_key="real", cart_id=None
    )
    assert await stock(shop, "croissant") == (30, 3, 27)
    # A checkout that recorded its intent and died before reserving.
    async with shop.sessions.begin() as session:
        await repository.record_intent(
            session,
            uuid.uuid4(),
            [StockLine.of("croissant", 2).model_dump()],
            datetime.now(UTC),
        )

    assert await release_orphaned_reservations(shop, now=after_grace()) == 0
    assert await stock(shop, "croissant") == (30, 3, 27)
    assert await counts(shop) == (1, 0)


async def test_a_checkout_stuck_past_its_grace_gives_up_after_the_sweeper_released_it(
    shop: Resources, database_url: str
) -> None:
    holder = await lock_orders(database_url)
    checkout = asyncio.create_task(
        place_order(shop, checkout_request([("bun", 4)]), idempotency_key="stuck", cart_id=None)
    )
    try:

        async def reserved() -> bool:
            return await stock(shop, "bun") == (10, 4, 6)

        await eventually(reserved)
        assert await release_orphaned_reservations(shop, now=after_grace()) == 1
        assert await stock(shop, "bun") == (10, 0, 10)
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()

    with pytest.raises(ReservationLapsed) as lapsed:
        await checkout
    assert lapsed.value.status == 503
    assert await stock(shop, "bun") == (10, 0, 10)  # released once, never twice
    assert await counts(shop) == (0, 0)
    # The key was given back: the customer's retry goes through.
    retried = await place_order(
        shop, checkout_request([("bun", 4)]), idempotency_key="stuck", cart_id=None
    )
    assert retried.status == 202
    assert await stock(shop, "bun") == (10, 4, 6)
    assert await counts(shop) == (1, 0)
