"""All SQL of the worker: the kitchen queue, expired reservations, the inventory ledger and
the stream checkpoints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickup.adapters.database import dialect_insert
from pickup.adapters.orm import InventoryLedgerEntry, Order, OrderItem, StreamCheckpoint
from pickup.core.orders import OrderStatus, ReservationState

# Confirmed orders due this long ago are assumed to be still in the kitchen's queue.
KITCHEN_LOOKBACK = timedelta(hours=6)
IN_KITCHEN = (OrderStatus.CONFIRMED, OrderStatus.PREPARING)


@dataclass(frozen=True)
class OrderToConfirm:
    id: uuid.UUID
    status: OrderStatus
    version: int
    pickup_at: datetime
    items: int


async def order_to_confirm(session: AsyncSession, order_id: uuid.UUID) -> OrderToConfirm | None:
    row = (
        await session.execute(
            select(
                Order.id,
                Order.status,
                Order.version,
                Order.pickup_at,
                func.coalesce(func.sum(OrderItem.quantity), 0),
            )
            .select_from(Order)
            .outerjoin(OrderItem, OrderItem.order_id == Order.id)
            .where(Order.id == order_id)
            .group_by(Order.id)
        )
    ).one_or_none()
    if row is None:
        return None
    return OrderToConfirm(row[0], OrderStatus(row[1]), row[2], row[3], int(row[4]))


async def kitchen_queue(
    session: AsyncSession, *, due_by: datetime, now: datetime, exclude: uuid.UUID
) -> list[int]:
    """Item counts of the orders in the kitchen due no later than ``due_by``, preparing
    first, then by pickup time."""
    preparing_first = (Order.status != OrderStatus.PREPARING).label("waiting")
    rows = await session.execute(
        select(func.sum(OrderItem.quantity))
        .select_from(Order)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .where(
            Order.status.in_(IN_KITCHEN),
            Order.pickup_at <= due_by,
            Order.pickup_at >= now - KITCHEN_LOOKBACK,
            Order.id != exclude,
        )
        .group_by(Order.id, Order.status, Order.pickup_at)
        .order_by(preparing_first, Order.pickup_at, Order.id)
    )
    return [int(count) for (count,) in rows]


async def expired_reservations(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[uuid.UUID, int]]:
    """(id, version) of pending orders whose reservation ran out, oldest first.

    ``SKIP LOCKED`` passes over orders another process is changing at this moment (another
    sweeper expiring it, the worker confirming it): they are that process's to settle.
    """
    rows = await session.execute(
        select(Order.id, Order.version)
        .where(
            Order.status == OrderStatus.PENDING,
            Order.reservation_state == ReservationState.HELD,
            Order.reservation_expires_at <= now,
        )
        .order_by(Order.reservation_expires_at, Order.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(row[0], row[1]) for row in rows]


# --- The inventory ledger and stream checkpoints ------------------------------------------------


async def add_ledger_entry(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert one ledger row unless its ``source_event_id`` is there already; whether it was."""
    statement = (
        dialect_insert(session, InventoryLedgerEntry)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source_event_id"])
        .returning(InventoryLedgerEntry.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def lock_checkpoint(session: AsyncSession, shard_id: str) -> StreamCheckpoint | bool | None:
    """The shard's checkpoint, locked for this transaction.

    ``None`` if there is none yet; ``False`` if another worker holds it right now (that
    worker is reading the shard, so this one leaves it alone).
    """
    exists = await session.scalar(
        select(func.count())
        .select_from(StreamCheckpoint)
        .where(StreamCheckpoint.shard_id == shard_id)
    )
    if not exists:
        return None
    locked = await session.scalar(
        select(StreamCheckpoint)
        .where(StreamCheckpoint.shard_id == shard_id)
        .with_for_update(skip_locked=True)
    )
    return False if locked is None else locked


async def save_checkpoint(
    session: AsyncSession, *, shard_id: str, stream_arn: str, sequence_number: str, now: datetime
) -> None:
    statement = dialect_insert(session, StreamCheckpoint).values(
        shard_id=shard_id, stream_arn=stream_arn, sequence_number=sequence_number, updated_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["shard_id"],
        set_={
            "stream_arn": statement.excluded.stream_arn,
            "sequence_number": statement.excluded.sequence_number,
            "updated_at": statement.excluded.updated_at,
        },
    )
    await session.execute(statement)
