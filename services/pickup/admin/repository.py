"""All SQL of the staff back office: the order board, order details, the inventory ledger and
the figures behind the metrics and reorder suggestions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from pickup.adapters.orm import (
    InventoryLedgerEntry,
    NotificationLog,
    Order,
    OrderItem,
    OrderStatusHistory,
    StaffUser,
)
from pickup.core.orders import OrderStatus

SORT_COLUMNS = {"pickup_at": Order.pickup_at, "created_at": Order.created_at}


@dataclass(frozen=True)
class OrderFilter:
    statuses: Sequence[OrderStatus] = ()
    pickup_from: datetime | None = None  # inclusive
    pickup_before: datetime | None = None  # exclusive
    code: str | None = None  # a normalised order code to match exactly
    text: str | None = None  # matched anywhere in the customer's name or email


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: Select[tuple[Order]], where: OrderFilter) -> Select[tuple[Order]]:
    if where.statuses:
        query = query.where(Order.status.in_(list(where.statuses)))
    if where.pickup_from is not None:
        query = query.where(Order.pickup_at >= where.pickup_from)
    if where.pickup_before is not None:
        query = query.where(Order.pickup_at < where.pickup_before)
    matches = []
    if where.code is not None:
        matches.append(Order.code == where.code)
    if where.text:
        pattern = f"%{_escape_like(where.text.lower())}%"
        matches.append(func.lower(Order.customer_name).like(pattern, escape="\\"))
        matches.append(func.lower(Order.customer_email).like(pattern, escape="\\"))
    if matches:
        query = query.where(or_(*matches))
    return query


async def list_orders(
    session: AsyncSession,
    where: OrderFilter,
    *,
    sort: str,
    descending: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Order]:
    """One page of orders in ``(sort column, id)`` order, starting after the ``after`` key.

    Keyset pagination: a page costs the same however deep it is, and orders placed meanwhile
    neither repeat nor skip rows.
    """
    column = SORT_COLUMNS[sort]
    query = _filtered(select(Order), where)
    if after is not None:
        key = tuple_(column, Order.id)
        query = query.where(key < tuple_(*after) if descending else key > tuple_(*after))
    order = (column.desc(), Order.id.desc()) if descending else (column.asc(), Order.id.asc())
    return (await session.scalars(query.order_by(*order).limit(limit))).all()


async def order_with_history(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    return await session.scalar(
        select(Order).where(Order.id == order_id).options(selectinload(Order.history))
    )


async def staff_by_ids(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, StaffUser]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    users = await session.scalars(select(StaffUser).where(StaffUser.id.in_(wanted)))
    return {user.id: user for user in users}


async def notifications_for(
    session: AsyncSession, order_id: uuid.UUID
) -> Sequence[NotificationLog]:
    query = (
        select(NotificationLog)
        .where(NotificationLog.order_id == order_id)
        .order_by(NotificationLog.created_at, NotificationLog.id)
    )
    return (await session.scalars(query)).all()


async def ledger_for_order(
    session: AsyncSession, order_id: uuid.UUID
) -> Sequence[InventoryLedgerEntry]:
    query = (
        select(InventoryLedgerEntry)
        .where(InventoryLedgerEntry.order_id == order_id)
        .order_by(InventoryLedgerEntry.created_at, InventoryLedgerEntry.id)
    )
    return (await session.scalars(query)).all()


async def ledger_for_product(
    session: AsyncSession, product_id: str, limit: int
) -> Sequence[InventoryLedgerEntry]:
    query = (
        select(InventoryLedgerEntry)
        .where(InventoryLedgerEntry.product_id == product_id)
        .order_by(InventoryLedgerEntry.created_at.desc(), InventoryLedgerEntry.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


# Orders that sold their items, or will: everything but cancelled and expired ones.
_SELLING = (
    OrderStatus.PENDING,
    OrderStatus.CONFIRMED,
    OrderStatus.PREPARING,
    OrderStatus.READY,
    OrderStatus.PICKED_UP,
)


async def units_sold_since(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Units ordered per product in orders placed since ``since`` (not cancelled or expired)."""
    query = (
        select(OrderItem.product_id, func.sum(OrderItem.quantity))
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.created_at >= since, Order.status.in_(list(_SELLING)))
        .group_by(OrderItem.product_id)
    )
    return {product_id: int(units) for product_id, units in (await session.execute(query)).all()}


async def orders_created_between(
    session: AsyncSession, start: datetime, end: datetime
) -> list[tuple[OrderStatus, datetime]]:
    query = select(Order.status, Order.created_at).where(
        Order.created_at >= start, Order.created_at < end
    )
    return [(status, created) for status, created in (await session.execute(query)).all()]


async def preparation_spans(
    session: AsyncSession, ready_since: datetime
) -> list[tuple[datetime, datetime]]:
    """(entered preparing, entered ready) of each order that became ready since ``ready_since``."""
    ready = (
        select(OrderStatusHistory.order_id)
        .where(
            OrderStatusHistory.to_status == OrderStatus.READY,
            OrderStatusHistory.created_at >= ready_since,
        )
        .scalar_subquery()
    )
    query = (
        select(
            OrderStatusHistory.order_id,
            OrderStatusHistory.to_status,
            func.min(OrderStatusHistory.created_at),
        )
        .where(
            OrderStatusHistory.order_id.in_(ready),
            OrderStatusHistory.to_status.in_([OrderStatus.PREPARING, OrderStatus.READY]),
        )
        .group_by(OrderStatusHistory.order_id, OrderStatusHistory.to_status)
    )
    starts: dict[uuid.UUID, datetime] = {}
    ends: dict[uuid.UUID, datetime] = {}
    for order_id, status, at in (await session.execute(query)).all():
        (starts if status == OrderStatus.PREPARING else ends)[order_id] = at
    return [(starts[oid], ends[oid]) for oid in ends if oid in starts and ends[oid] >= starts[oid]]


async def notification_failures_since(session: AsyncSession, since: datetime) -> int:
    query = select(func.count()).where(
        and_(NotificationLog.status == "failed", NotificationLog.created_at >= since)
    )
    return int(await session.scalar(query.select_from(NotificationLog)) or 0)
