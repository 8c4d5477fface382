"""The models against a real, migrated PostgreSQL: constraints hold, and so do counters under
concurrency (SQLite serialises writers and would hide a lost update)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from pickup.adapters.database import create_engine, create_sessionmaker
from pickup.adapters.orm import (
    IdempotencyKey,
    NotificationLog,
    Order,
    OrderItem,
    OrderStatusHistory,
    PickupSlot,
    StaffUser,
)
from pickup.core.orders import Actor, OrderStatus, ReservationState, new_order_code
from pickup.settings import Settings

PICKUP_AT = datetime(2026, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))


def an_order(**overrides: Any) -> Order:
    values: dict[str, Any] = {
        "code": new_order_code(),
        "customer_name": "Ada Lovelace",
        "customer_email": "ada@example.com",
        "pickup_at": PICKUP_AT,
        "subtotal_cents": 700,
        "total_cents": 700,
        "currency": "GBP",
        "lookup_token_hash": "0" * 64,
        "reservation_expires_at": PICKUP_AT - timedelta(hours=1),
    }
    values.update(overrides)
    return Order(**values)


def an_item(**overrides: Any) -> OrderItem:
    values: dict[str, Any] = {
        "product_id": "croissant",
        "product_name": "Croissant",
        "unit_price_cents": 350,
        "quantity": 2,
        "line_total_cents": 700,
    }
    values.update(overrides)
    return OrderItem(**values)


async def test_an_order_is_stored_with_its_items_and_history(db_engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(db_engine)
    order = an_order(
        items=[
            an_item(),
            an_item(
                product_id="tea",
                product_name="Tea",
                quantity=1,
                unit_price_cents=0,
                line_total_cents=0,
            ),
        ],
        special_instructions="no nuts, please",
    )
    async with sessions.begin() as session:
        session.add(order)
        await session.flush()
        session.add(
            OrderStatusHistory(
                order_id=order.id, to_status=OrderStatus.PENDING, actor_type=Actor.CUSTOMER
            )
        )

    async with sessions() as session:
        stored = await session.scalar(
            select(Order).where(Order.code == order.code).options(selectinload(Order.history))
        )

    assert stored is not None
    assert isinstance(stored.id, uuid.UUID) and stored.id.version == 4
    assert stored.status is OrderStatus.PENDING
    assert stored.reservation_state is ReservationState.HELD
    assert stored.version == 1
    assert stored.sms_opt_in is False
    assert stored.pickup_at == PICKUP_AT
    assert stored.pickup_at.tzinfo is UTC
    assert stored.created_at.tzinfo is UTC
    assert abs(stored.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert [(item.product_id, item.quantity) for item in stored.items] == [
        ("croissant", 2),
        ("tea", 1),
    ]
    [created] = stored.history
    assert (created.from_status, created.to_status) == (None, OrderStatus.PENDING)
    assert created.actor_type is Actor.CUSTOMER


async def test_two_orders_cannot_share_a_code(db_engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(db_engine)
    async with sessions.begin() as session:
        session.add(an_order(code="K7M2QX"))

    with pytest.raises(IntegrityError, match="uq_orders_code"):
        async with sessions.begin() as session:
            session.add(an_order(code="K7M2QX"))


@pytest.mark.parametrize(
    ("order", "item", "constraint"),
    [
        ({}, {"quantity": 0, "line_total_cents": 0}, "ck_order_items_quantity_positive"),
        (
            {},
            {"quantity": -1, "unit_price_cents": 0, "line_total_cents": 0},
            "ck_order_items_quantity_positive",
        ),
        ({}, {"unit_price_cents": -1, "line_total_cents": -2}, "unit_price_cents_non_negative"),
        ({}, {"line_total_cents": 1}, "ck_order_items_line_total_cents_product"),
        ({"total_cents": -1}, {}, "ck_orders_total_cents_non_negative"),
        ({"subtotal_cents": -700}, {}, "ck_orders_subtotal_cents_non_negative"),
        ({"currency": "GB"}, {}, "ck_orders_currency_code"),
    ],
)
async def test_check_constraints_refuse_impossible_quantities_and_amounts(
    db_engine: AsyncEngine, order: dict[str, Any], item: dict[str, Any], constraint: str
) -> None:
    sessions = create_sessionmaker(db_engine)
    with pytest.raises(IntegrityError, match=constraint):
        async with sessions.begin() as session:
            session.add(an_order(items=[an_item(**item)], **order))

    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0


async def test_a_status_outside_the_life_cycle_is_refused(db_engine: AsyncEngine) -> None:
    async with create_sessionmaker(db_engine).begin() as session:
        session.add(an_order())

    with pytest.raises(IntegrityError, match="ck_orders_status"):
        async with db_engine.begin() as connection:
            await connection.execute(text("UPDATE orders SET status = 'shipped'"))


async def test_a_naive_datetime_is_refused_rather_than_guessed(db_engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(db_engine)
    with pytest.raises(StatementError, match="timezone-aware"):
        async with sessions.begin() as session:
            session.add(an_order(pickup_at=datetime(2026, 12, 1, 9, 30)))


async def test_a_stale_copy_of_an_order_cannot_overwrite_a_newer_status(
    db_engine: AsyncEngine,
) -> None:
    sessions = create_sessionmaker(db_engine)
    async with sessions.begin() as session:
        order = an_order()
        session.add(order)

    async with sessions() as staff, sessions() as sweeper:
        by_staff = await staff.get_one(Order, order.id)
        by_sweeper = await sweeper.get_one(Order, order.id)
        by_staff.status = OrderStatus.CONFIRMED
        await staff.commit()

        by_sweeper.status = OrderStatus.EXPIRED
        with pytest.raises(StaleDataError):
            await sweeper.commit()

    async with sessions() as session:
        stored = await session.get_one(Order, order.id)
        assert (stored.status, stored.version) == (OrderStatus.CONFIRMED, 2)
        assert stored.updated_at >= stored.created_at


async def test_deleting_an_order_deletes_its_items_and_history(db_engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(db_engine)
    async with sessions.begin() as session:
        order = an_order(items=[an_item()])
        session.add(order)
        await session.flush()
        session.add(OrderStatusHistory(order_id=order.id, to_status="pending", actor_type="system"))

    async with db_engine.begin() as connection:
        await connection.execute(text("DELETE FROM orders"))
        remaining = await connection.scalar(
            text(
                "SELECT (SELECT count(*) FROM order_items)"
                " + (SELECT count(*) FROM order_status_history)"
            )
        )
    assert remaining == 0


@pytest.mark.slow
async def test_a_slot_never_books_past_capacity(
    db_engine: AsyncEngine, make_settings: Callable[..., Settings]
) -> None:
    slot = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    async with db_engine.begin() as connection:
        await connection.execute(insert(PickupSlot).values(slot_start=slot, capacity=20))

    attempts = 50
    engine = create_engine(make_settings(db_pool_size=attempts, db_max_overflow=0))
    everyone_connected = asyncio.Barrier(attempts)

    async def book() -> bool:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await connection.rollback()
            await everyone_connected.wait()
            result = await connection.execute(
                update(PickupSlot)
                .where(PickupSlot.slot_start == slot, PickupSlot.booked < PickupSlot.capacity)
                .values(booked=PickupSlot.booked + 1)
            )
            # Hold the row lock a moment so the other updates queue up behind it.
            await asyncio.sleep(0.005)
            await connection.commit()
            return result.rowcount == 1

    try:
        outcomes = await asyncio.gather(*(book() for _ in range(attempts)))
    finally:
        await engine.dispose()

    assert outcomes.count(True) == 20
    async with db_engine.connect() as connection:
        booked = await connection.scalar(
            select(PickupSlot.booked).where(PickupSlot.slot_start == slot)
        )
    assert booked == 20


async def test_an_idempotency_key_is_stored_once_per_scope(db_engine: AsyncEngine) -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    row = {"scope": "orders", "key": "3f1c-retry", "request_hash": "ab" * 32, "expires_at": expires}
    async with db_engine.begin() as connection:
        await connection.execute(insert(IdempotencyKey), [row])
        await connection.execute(insert(IdempotencyKey), [{**row, "scope": "restock"}])

    with pytest.raises(IntegrityError, match="pk_idempotency_keys"):
        async with db_engine.begin() as connection:
            await connection.execute(insert(IdempotencyKey), [{**row, "request_hash": "cd" * 32}])

    sessions = create_sessionmaker(db_engine)
    async with sessions() as session:
        stored = await session.get_one(IdempotencyKey, ("orders", "3f1c-retry"))
    assert stored.state == "in_progress"
    assert stored.request_hash == "ab" * 32


async def test_only_one_send_of_a_notification_can_succeed(db_engine: AsyncEngine) -> None:
    base = {
        "channel": "email",
        "template": "order_confirmed",
        "recipient": "ada@example.com",
        "dedupe_key": "order.confirmed:1234:email",
    }
    async with db_engine.begin() as connection:
        await connection.execute(
            insert(NotificationLog),
            [{**base, "status": "failed", "attempt": 1}, {**base, "status": "sent", "attempt": 2}],
        )

    with pytest.raises(IntegrityError, match="uq_notification_log_dedupe_key_sent"):
        async with db_engine.begin() as connection:
            await connection.execute(insert(NotificationLog), [{**base, "status": "sent"}])


async def test_staff_emails_are_stored_lower_cased(db_engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(db_engine)
    async with sessions.begin() as session:
        session.add(StaffUser(email=" Chef@Example.COM ", display_name="Chef", password_hash="x"))

    with pytest.raises(IntegrityError, match="uq_staff_users_email"):
        async with sessions.begin() as session:
            session.add(
                StaffUser(email="chef@example.com", display_name="Chef 2", password_hash="x")
            )

    with pytest.raises(IntegrityError, match="ck_staff_users_email_lower_case"):
        async with db_engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO staff_users (id, email, display_name, password_hash) "
                    "VALUES (:id, 'Sous@Example.com', 'Sous', 'x')"
                ),
                {"id": uuid.uuid4()},
            )
