"""The PostgreSQL counts the metrics samplers read (cheap: each is an index-only count)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickup.adapters.orm import Order, OutboxMessage
from pickup.core.orders import ReservationState


async def active_reservations(session: AsyncSession) -> int:
    """Orders whose stock is still reserved (placed, confirmed, preparing or ready)."""
    query = (
        select(func.count())
        .select_from(Order)
        .where(Order.reservation_state == ReservationState.HELD)
    )
    return int(await session.scalar(query) or 0)


async def outbox_pending(session: AsyncSession) -> int:
    """Outbox messages written and not yet sent."""
    query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
    return int(await session.scalar(query) or 0)
