"""Re-estimating the kitchen queue whenever it moves.

When an order joins the kitchen (confirmed) or leaves it (ready, picked up, cancelled,
expired), every order still waiting gets a fresh estimate from the same model the worker
confirms with (``core/estimates.py``). Estimates that moved by a minute or more are saved,
their status cache is invalidated and the change is pushed live to the customer and staff.
The estimate is a forecast, not a state: saving it does not bump the order's version, so a
staff member's If-Match stays valid.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from pickup import live
from pickup.adapters.orm import Order, OrderItem
from pickup.core.estimates import estimate_ready_at
from pickup.core.orders import OrderStatus
from pickup.orders.status_cache import invalidate_status
from pickup.runtime import Resources

logger = logging.getLogger("pickup.orders")

IN_KITCHEN = (OrderStatus.CONFIRMED, OrderStatus.PREPARING)
NOTICEABLE = timedelta(minutes=1)


async def refresh_estimates(resources: Resources, now: datetime | None = None) -> int:
    """Re-estimate every order in the kitchen; return how many estimates moved."""
    now = now or datetime.now(UTC)
    settings = resources.settings
    waiting = (Order.status != OrderStatus.PREPARING).label("waiting")
    query = (
        select(
            Order.id,
            Order.pickup_at,
            Order.estimated_ready_at,
            func.coalesce(func.sum(OrderItem.quantity), 1),
        )
        .select_from(Order)
        .outerjoin(OrderItem, OrderItem.order_id == Order.id)
        .where(Order.status.in_(IN_KITCHEN))
        .group_by(Order.id, Order.pickup_at, Order.estimated_ready_at, Order.created_at, waiting)
        # The kitchen's order: what is being prepared, then by pickup time; among equals the
        # order already promised earlier keeps its place (ties broken for good by id).
        .order_by(
            waiting,
            Order.pickup_at,
            Order.estimated_ready_at.asc().nulls_last(),
            Order.created_at,
            Order.id,
        )
    )
    moved: dict[uuid.UUID, datetime] = {}
    async with resources.sessions.begin() as session:
        queue_ahead: list[int] = []
        for order_id, pickup_at, current, items in (await session.execute(query)).all():
            ready = estimate_ready_at(
                now=now,
                pickup_at=pickup_at,
                items=max(int(items), 1),
                queue_ahead=queue_ahead,
                prep_minutes_per_item=settings.prep_minutes_per_item,
                staff_capacity=settings.staff_capacity,
            )
            if current is None or abs(ready - current) >= NOTICEABLE:
                moved[order_id] = ready
            queue_ahead.append(max(int(items), 1))
        for order_id, ready in moved.items():
            await session.execute(
                update(Order)
                .where(Order.id == order_id, Order.status.in_(IN_KITCHEN))
                .values(estimated_ready_at=ready)
                .execution_options(synchronize_session=False)
            )
    for order_id, ready in moved.items():
        await invalidate_status(resources.redis, order_id)
        event = {"order_id": str(order_id), "estimated_ready_at": ready.isoformat()}
        for topic in (live.order_topic(order_id), live.STAFF):
            await live.publish(
                resources.redis,
                topic,
                "order.estimate",
                event,
                max_len=settings.live_history_size,
            )
    if moved:
        logger.info("order.estimates_refreshed moved=%s", len(moved))
    return len(moved)
