"""The reservation sweeper: pending orders past their reservation become EXPIRED, their stock
goes back on sale, exactly once even with several sweepers at the same time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from pickup.adapters.orm import Order, OrderStatusHistory, OutboxMessage
from pickup.core.orders import OrderStatus, ReservationState
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.orders import confirm_order
from pickup.worker.sweeper import sweep_expired_reservations
from tests.integration.test_worker import history, open_shop, pipeline_settings, place


@pytest.fixture
async def shop(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any
) -> AsyncIterator[Resources]:
    async with open_shop(pipeline_settings(make_settings, reservation_ttl_seconds=60)) as shop:
        yield shop


async def stock(resources: Resources, product_id: str) -> tuple[int, int, int]:
    item = await resources.inventory.get_product(product_id, consistent_read=True)
    assert item is not None
    return item.on_hand, item.reserved, item.available


async def test_an_unconfirmed_order_expires_and_its_stock_goes_back_on_sale(
    shop: Resources,
) -> None:
    placed = await place(shop, items=[("croissant", 3)])
    assert await stock(shop, "croissant") == (30, 3, 27)

    assert await sweep_expired_reservations(shop) == 0  # not expired yet
    later = datetime.now(UTC) + timedelta(seconds=61)
    assert await sweep_expired_reservations(shop, now=later) == 1

    assert await history(shop, placed["order_id"]) == [OrderStatus.PENDING, OrderStatus.EXPIRED]
    assert await stock(shop, "croissant") == (30, 0, 30)
    async with shop.sessions() as session:
        order = await session.get(Order, uuid.UUID(placed["order_id"]))
        assert order is not None
        assert order.reservation_state is ReservationState.RELEASED
        events = await session.scalars(select(OutboxMessage.message_type))
        assert "order.expired" in list(events)
    assert await sweep_expired_reservations(shop, now=later) == 0  # nothing left to do


async def test_confirmed_orders_are_never_expired(shop: Resources) -> None:
    placed = await place(shop)
    await confirm_order(shop, uuid.UUID(placed["order_id"]))
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await sweep_expired_reservations(shop, now=later) == 0
    assert await history(shop, placed["order_id"]) == [OrderStatus.PENDING, OrderStatus.CONFIRMED]


async def test_several_sweepers_expire_each_order_exactly_once(shop: Resources) -> None:
    orders = [await place(shop, items=[("croissant", 1)]) for _ in range(12)]
    assert await stock(shop, "croissant") == (30, 12, 18)
    later = datetime.now(UTC) + timedelta(seconds=61)

    counts = await asyncio.gather(
        *(sweep_expired_reservations(shop, now=later, batch_size=5) for _ in range(4))
    )

    assert sum(counts) == len(orders)
    async with shop.sessions() as session:
        expired_rows = await session.scalar(
            select(func.count())
            .select_from(OrderStatusHistory)
            .where(OrderStatusHistory.to_status == OrderStatus.EXPIRED)
        )
        expired_events = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.message_type == "order.expired")
        )
    assert expired_rows == expired_events == len(orders)
    assert await stock(shop, "croissant") == (30, 0, 30)  # released once each, never twice


async def test_the_worker_and_the_sweeper_racing_on_one_order_settle_it_once(
    shop: Resources,
) -> None:
    placed = [await place(shop, items=[("bun", 1)]) for _ in range(6)]
    later = datetime.now(UTC) + timedelta(seconds=61)
    await asyncio.gather(
        sweep_expired_reservations(shop, now=later),
        *(confirm_order(shop, uuid.UUID(order["order_id"])) for order in placed),
    )
    held = 0
    for order in placed:
        statuses = await history(shop, order["order_id"])
        assert statuses in (
            [OrderStatus.PENDING, OrderStatus.CONFIRMED],
            [OrderStatus.PENDING, OrderStatus.EXPIRED],
        )
        held += statuses[-1] is OrderStatus.CONFIRMED
    assert await stock(shop, "bun") == (10, held, 10 - held)
