"""Every status change of an order goes through :func:`change_status`.

Inside one PostgreSQL transaction holding the order's row lock: check the expected version and
the transition (who may do what), settle the stock reservation on the way out (confirm on
pickup, release on cancel or expiry — exactly once, guarded by ``reservation_state``), move
the status, write the history row and the ``order.<status>`` event to the outbox. After the
commit: send the event, invalidate the status cache and push the change live.

The DynamoDB settlement happens while the row is locked and before the commit, so a failed
settlement changes nothing; a commit that fails after a successful settlement is the one
window left (DynamoDB's ``ClientRequestToken`` deduplicates the retry on real AWS).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickup import live
from pickup.adapters.orm import Order, OrderStatusHistory
from pickup.core.errors import Conflict
from pickup.core.inventory import StockLine
from pickup.core.orders import Actor, OrderStatus, ReservationState, check_transition
from pickup.observability import cloudwatch
from pickup.observability.metrics import (
    CONFIRMED_TO_READY_SECONDS,
    ORDER_EVENTS,
    PLACED_TO_CONFIRMED_SECONDS,
)
from pickup.orders import repository
from pickup.orders.estimates import IN_KITCHEN, refresh_estimates
from pickup.orders.service import OrderNotFound
from pickup.orders.status_cache import invalidate_status
from pickup.outbox.relay import OutboxRelay, outbox_message
from pickup.runtime import Resources

logger = logging.getLogger("pickup.orders")

# Status changes counted in pickup_order_events_total (``placed`` is counted at checkout).
LIFECYCLE_EVENTS = frozenset({"confirmed", "ready", "picked_up", "cancelled", "expired"})


class StaleVersion(Conflict):
    type = "stale-version"
    status = 412
    title = "The order changed since you loaded it"

    def __init__(self, current_status: OrderStatus, current_version: int) -> None:
        super().__init__(
            f"Someone else changed this order: it is now {current_status} "
            f"(version {current_version}). Reload it and try again."
        )
        self.current_status = current_status
        self.current_version = current_version

    def extensions(self) -> dict[str, Any]:
        return {"current_status": str(self.current_status), "current_version": self.current_version}


def event_payload(order: Order, from_status: OrderStatus, now: datetime) -> dict[str, Any]:
    """What an ``order.<status>`` event carries: identifiers and times, no personal data."""
    return {
        "order_id": str(order.id),
        "code": order.code,
        "status": str(order.status),
        "from_status": str(from_status),
        "order_version": order.version,
        "pickup_at": order.pickup_at.isoformat(),
        "estimated_ready_at": order.estimated_ready_at.isoformat()
        if order.estimated_ready_at
        else None,
        "occurred_at": now.isoformat(),
    }


async def change_status(
    resources: Resources,
    order_id: uuid.UUID,
    to: OrderStatus,
    *,
    actor: Actor,
    staff_user_id: uuid.UUID | None = None,
    note: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
    updates: dict[str, Any] | None = None,
) -> Order:
    """Move ``order_id`` to ``to``; raises OrderNotFound, StaleVersion or InvalidTransition."""
    now = now or datetime.now(UTC)
    to = OrderStatus(to)
    names = resources.settings.names
    detail = "The order cannot be changed right now. Please try again in a moment."
    async with repository.database_errors(detail), resources.sessions.begin() as session:
        order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
        if order is None:
            raise OrderNotFound(f"There is no order {order_id}.")
        if expected_version is not None and order.version != expected_version:
            raise StaleVersion(order.status, order.version)
        check_transition(order.status, to, actor=actor)
        await _settle_reservation(resources, order, to)
        confirmed_at = await _confirmed_at(session, order.id) if to is OrderStatus.READY else None
        from_status = order.status
        order.status = to
        order.updated_at = now
        for field, value in (updates or {}).items():
            setattr(order, field, value)
        session.add(
            OrderStatusHistory(
                order_id=order.id,
                from_status=from_status,
                to_status=to,
                actor_type=actor,
                staff_user_id=staff_user_id,
                note=note,
                created_at=now,
            )
        )
        await session.flush()  # bumps the version
        payload = event_payload(order, from_status, now)
        message = outbox_message(
            kind="sns",
            destination=names.order_events_topic,
            message_type=f"order.{to.value}",
            payload=payload,
            dedupe=f"order.{to.value}:{order.id}",
        )
        session.add(message)
        await session.flush()
        outbox_ids = [message.id]
    logger.info(
        "order.status_changed order_id=%s from=%s to=%s actor=%s", order_id, from_status, to, actor
    )
    _record_metrics(order, to, now, confirmed_at)
    await _after_change(resources, order, payload, outbox_ids)
    if from_status in IN_KITCHEN or to in IN_KITCHEN:
        try:  # the queue moved: everyone behind this order gets a fresh estimate
            await refresh_estimates(resources, now)
        except Exception:  # a forecast; the next change refreshes it
            logger.warning("order.estimates_refresh_failed order_id=%s", order_id)
    return order


async def _confirmed_at(session: AsyncSession, order_id: uuid.UUID) -> datetime | None:
    """When the order was confirmed (the latest confirmation in its history)."""
    return await session.scalar(
        select(OrderStatusHistory.created_at)
        .where(
            OrderStatusHistory.order_id == order_id,
            OrderStatusHistory.to_status == OrderStatus.CONFIRMED,
        )
        .order_by(OrderStatusHistory.created_at.desc())
        .limit(1)
    )


def _record_metrics(
    order: Order, to: OrderStatus, now: datetime, confirmed_at: datetime | None
) -> None:
    """Count the lifecycle event and observe how long its step took (after the commit)."""
    if to.value in LIFECYCLE_EVENTS:
        ORDER_EVENTS.labels(to.value).inc()
    if to is OrderStatus.CONFIRMED:
        waited = max((now - order.created_at).total_seconds(), 0.0)
        PLACED_TO_CONFIRMED_SECONDS.observe(waited)
        cloudwatch.observe("PlacedToConfirmed", waited)
    elif to is OrderStatus.READY and confirmed_at is not None:
        CONFIRMED_TO_READY_SECONDS.observe(max((now - confirmed_at).total_seconds(), 0.0))


async def _settle_reservation(resources: Resources, order: Order, to: OrderStatus) -> None:
    if order.reservation_state != ReservationState.HELD:
        return
    if to is OrderStatus.PICKED_UP:
        operation, state = resources.inventory.confirm, ReservationState.CONFIRMED
    elif to in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        operation, state = resources.inventory.release, ReservationState.RELEASED
    else:
        return
    lines = [StockLine.of(item.product_id, item.quantity) for item in order.items]
    await operation(lines, order_id=str(order.id))
    order.reservation_state = state


async def _after_change(
    resources: Resources, order: Order, payload: dict[str, Any], outbox_ids: list[int]
) -> None:
    # What people watch first (status reads, the board, the status page), then the event to
    # SNS: live views never wait on SNS, and both Redis steps log and go on when Redis is down.
    await invalidate_status(resources.redis, order.id)
    max_len = resources.settings.live_history_size
    # Live subscribers (the board, the status page) send `version` back as If-Match.
    board = {**payload, "version": payload["order_version"]}
    public = {
        key: board[key]
        for key in ("order_id", "code", "status", "version", "pickup_at", "estimated_ready_at")
    }
    await live.publish(resources.redis, live.STAFF, "order.status", board, max_len=max_len)
    await live.publish(
        resources.redis, live.order_topic(order.id), "order.status", public, max_len=max_len
    )
    try:
        await asyncio.wait_for(OutboxRelay(resources).flush(outbox_ids), timeout=5)
    except Exception:  # the relay loop sends it later
        logger.warning("order.event_send_deferred order_id=%s", order.id)
