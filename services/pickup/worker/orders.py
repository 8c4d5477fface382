"""The order queue's handler: confirm a placed order, with its estimated ready time.

Idempotent: the status change happens once (``change_status`` locks the order and checks the
transition), so a second delivery of the same message, or one arriving after staff moved the
order on, finds it no longer pending and is acknowledged without changing anything.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pickup.core.estimates import estimate_ready_at
from pickup.core.orders import Actor, InvalidTransition, OrderStatus
from pickup.messaging.consumer import Handler, Message, Poison, Retry
from pickup.orders.service import OrderNotFound
from pickup.orders.transitions import StaleVersion, change_status
from pickup.runtime import Resources
from pickup.worker import repository

logger = logging.getLogger("pickup.worker")

SUPPORTED_VERSION = 1


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_DONE = "already_done"  # confirmed before, moved on, cancelled or expired


def order_handler(resources: Resources) -> Handler:
    async def handle(message: Message) -> None:
        payload = message.json()
        message_type = payload.get("type") or message.attributes.get("event_type")
        if message_type != "order.placed":
            raise Poison(f"unknown message type {message_type!r}")
        if payload.get("version") != SUPPORTED_VERSION:
            raise Poison(f"unsupported order.placed version {payload.get('version')!r}")
        try:
            order_id = uuid.UUID(str(payload["order_id"]))
        except (KeyError, ValueError):
            raise Poison("order_id is missing or not a UUID") from None
        await confirm_order(resources, order_id)

    return handle


async def confirm_order(
    resources: Resources, order_id: uuid.UUID, *, now: datetime | None = None
) -> Confirmation:
    """Confirm a pending order; anything else means the work was done already."""
    now = now or datetime.now(UTC)
    settings = resources.settings
    async with resources.sessions() as session:
        order = await repository.order_to_confirm(session, order_id)
        if order is None:
            # The message is sent only after the order committed, so it never will exist.
            raise Poison(f"there is no order {order_id}")
        if order.status is not OrderStatus.PENDING:
            logger.info("order.confirm_skipped order_id=%s status=%s", order_id, order.status)
            return Confirmation.ALREADY_DONE
        queue_ahead = await repository.kitchen_queue(
            session, due_by=order.pickup_at, now=now, exclude=order_id
        )
    ready_at = estimate_ready_at(
        now=now,
        pickup_at=order.pickup_at,
        items=max(order.items, 1),
        queue_ahead=queue_ahead,
        prep_minutes_per_item=settings.prep_minutes_per_item,
        staff_capacity=settings.staff_capacity,
    )
    try:
        await change_status(
            resources,
            order_id,
            OrderStatus.CONFIRMED,
            actor=Actor.SYSTEM,
            expected_version=order.version,
            now=now,
            updates={"estimated_ready_at": ready_at},
        )
    except OrderNotFound:
        raise Poison(f"there is no order {order_id}") from None
    except (InvalidTransition, StaleVersion) as error:
        # Someone changed it meanwhile (a duplicate delivery, staff, the sweeper).
        async with resources.sessions() as session:
            current = await repository.order_to_confirm(session, order_id)
        if current is not None and current.status is not OrderStatus.PENDING:
            logger.info("order.confirm_skipped order_id=%s status=%s", order_id, current.status)
            return Confirmation.ALREADY_DONE
        raise Retry(f"the order changed while being confirmed: {error}", delay=1) from None
    logger.info(
        "order.confirmed order_id=%s estimated_ready_at=%s queue_ahead=%s",
        order_id,
        ready_at.isoformat(),
        len(queue_ahead),
    )
    return Confirmation.CONFIRMED
