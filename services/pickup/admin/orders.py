"""The order board: listing with filters and keyset pages, full details, status changes.

Status changes all go through :func:`pickup.orders.transitions.change_status`, which checks the
transition and the expected version under the row lock, settles the stock reservation exactly
once, records history, queues the customer's notification and publishes the live events.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pickup.adapters.orm import InventoryLedgerEntry, Order
from pickup.admin import repository
from pickup.admin.repository import OrderFilter
from pickup.admin.schemas import (
    AdminHistoryEntry,
    AdminOrderDetail,
    AdminOrderSummary,
    LedgerEntryOut,
    LineImpact,
    LineSummary,
    NotificationOut,
    OrderPage,
    StaffRef,
    StockEffect,
)
from pickup.core.errors import InvalidInput
from pickup.core.orders import (
    Actor,
    OrderStatus,
    ReservationState,
    allowed_next,
    normalise_order_code,
)
from pickup.orders.repository import database_errors
from pickup.orders.service import OrderNotFound
from pickup.orders.transitions import change_status
from pickup.runtime import Resources
from pickup.staff.sessions import StaffSession

UNAVAILABLE = "Orders cannot be read right now. Please try again in a moment."
SORTS = ("pickup_at", "-pickup_at", "created_at", "-created_at")


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def build_filter(
    *,
    statuses: list[OrderStatus] | None,
    pickup_from: date | None,
    pickup_to: date | None,
    q: str | None,
    zone: ZoneInfo,
) -> OrderFilter:
    """The filter for the query parameters; dates are whole days in the shop's time zone."""
    if pickup_from and pickup_to and pickup_from > pickup_to:
        raise InvalidInput("pickup_from must not be after pickup_to", field="query.pickup_from")
    code = text = None
    if q is not None:
        q = q.strip()
        if not q:
            raise InvalidInput("search text must not be blank", field="query.q")
        try:
            code = normalise_order_code(q)
        except InvalidInput:
            code = None
        text = q
    return OrderFilter(
        statuses=tuple(dict.fromkeys(statuses or ())),
        pickup_from=_day_start(pickup_from, zone) if pickup_from else None,
        pickup_before=_day_start(pickup_to + timedelta(days=1), zone) if pickup_to else None,
        code=code,
        text=text,
    )


def encode_cursor(sort: str, order: Order) -> str:
    value = getattr(order, sort.lstrip("-"))
    raw = json.dumps([sort, value.isoformat(), str(order.id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[datetime, uuid.UUID]:
    invalid = InvalidInput(
        "cursor is not one this list handed out; start again without it", field="query.cursor"
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, order_id = json.loads(raw)
        at = datetime.fromisoformat(value)
        key = (at, uuid.UUID(order_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise invalid from None
    if at.tzinfo is None:
        raise invalid
    if cursor_sort != sort:
        raise InvalidInput(
            f"this cursor belongs to sort={cursor_sort}; keep the sort while paging",
            field="query.cursor",
        )
    return key


def summary(order: Order) -> AdminOrderSummary:
    return AdminOrderSummary(
        order_id=order.id,
        code=order.code,
        status=order.status,
        version=order.version,
        customer_name=order.customer_name,
        customer_email=order.customer_email,
        pickup_at=order.pickup_at,
        estimated_ready_at=order.estimated_ready_at,
        special_instructions=order.special_instructions,
        items=[
            LineSummary(product_id=item.product_id, name=item.product_name, quantity=item.quantity)
            for item in order.items
        ],
        total_cents=order.total_cents,
        currency=order.currency,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


async def list_orders(
    resources: Resources, where: OrderFilter, *, sort: str, cursor: str | None, limit: int
) -> OrderPage:
    after = decode_cursor(cursor, sort) if cursor else None
    async with database_errors(UNAVAILABLE), resources.sessions() as session:
        rows = await repository.list_orders(
            session,
            where,
            sort=sort.lstrip("-"),
            descending=sort.startswith("-"),
            after=after,
            limit=limit + 1,
        )
    page = list(rows[:limit])
    next_cursor = encode_cursor(sort, page[-1]) if len(rows) > limit else None
    return OrderPage(items=[summary(order) for order in page], next_cursor=next_cursor)


_EFFECTS: dict[ReservationState, tuple[StockEffect, int, int, int]] = {
    # effect, on_hand, reserved and available deltas per unit, relative to before the order
    ReservationState.HELD: ("held", 0, 1, -1),
    ReservationState.CONFIRMED: ("deducted", -1, 0, -1),
    ReservationState.RELEASED: ("released", 0, 0, 0),
}


def _lines(order: Order) -> list[LineImpact]:
    effect, on_hand, reserved, available = _EFFECTS[order.reservation_state]
    return [
        LineImpact(
            product_id=item.product_id,
            name=item.product_name,
            quantity=item.quantity,
            unit_price_cents=item.unit_price_cents,
            line_total_cents=item.line_total_cents,
            effect=effect,
            on_hand_delta=on_hand * item.quantity,
            reserved_delta=reserved * item.quantity,
            available_delta=available * item.quantity,
        )
        for item in order.items
    ]


def ledger_out(entry: InventoryLedgerEntry) -> LedgerEntryOut:
    return LedgerEntryOut(
        product_id=entry.product_id,
        kind=entry.kind,
        delta_on_hand=entry.delta_on_hand,
        delta_reserved=entry.delta_reserved,
        delta_available=entry.delta_available,
        on_hand_after=entry.on_hand_after,
        reserved_after=entry.reserved_after,
        available_after=entry.available_after,
        reason=entry.reason,
        staff_user_id=entry.staff_user_id,
        at=entry.created_at,
    )


async def order_detail(resources: Resources, order_id: uuid.UUID) -> AdminOrderDetail:
    async with database_errors(UNAVAILABLE), resources.sessions() as session:
        order = await repository.order_with_history(session, order_id)
        if order is None:
            raise OrderNotFound(f"There is no order {order_id}.")
        staff = await repository.staff_by_ids(
            session, [entry.staff_user_id for entry in order.history if entry.staff_user_id]
        )
        notifications = await repository.notifications_for(session, order_id)
        ledger = await repository.ledger_for_order(session, order_id)
    history = []
    for entry in sorted(order.history, key=lambda entry: (entry.created_at, entry.id)):
        user = staff.get(entry.staff_user_id) if entry.staff_user_id else None
        history.append(
            AdminHistoryEntry(
                from_status=entry.from_status,
                to_status=entry.to_status,
                actor=entry.actor_type.value,
                staff=StaffRef(id=user.id, display_name=user.display_name, email=user.email)
                if user
                else None,
                note=entry.note,
                at=entry.created_at,
            )
        )
    return AdminOrderDetail(
        **summary(order).model_dump(),
        customer_phone=order.customer_phone,
        sms_opt_in=order.sms_opt_in,
        reservation_state=order.reservation_state,
        reservation_expires_at=order.reservation_expires_at,
        subtotal_cents=order.subtotal_cents,
        allowed_transitions=allowed_next(order.status, Actor.STAFF),
        lines=_lines(order),
        history=history,
        ledger=[ledger_out(entry) for entry in ledger],
        notifications=[
            NotificationOut(
                channel=log.channel,
                template=log.template,
                recipient=log.recipient,
                status=log.status,
                error=log.error,
                attempt=log.attempt,
                at=log.created_at,
            )
            for log in notifications
        ],
    )


def expected_version(if_match: str | None, body_version: int | None) -> int | None:
    """The version the client saw, from ``If-Match`` (an entity tag) or the body.

    Neither given is :class:`PreconditionRequired`; ``If-Match: *`` accepts any version.
    """
    header_version: int | None = None
    if if_match is not None:
        tag = if_match.strip()
        if tag == "*":
            if body_version is not None:
                return body_version
            return None
        tag = tag.removeprefix("W/")
        if not (tag.startswith('"') and tag.endswith('"') and tag[1:-1].isdigit()):
            raise InvalidInput(
                'If-Match must be the entity tag from the order, e.g. "3"',
                field="header.If-Match",
            )
        header_version = int(tag[1:-1])
        if body_version is not None and body_version != header_version:
            raise InvalidInput("If-Match and version name different versions", field="body.version")
        return header_version
    if body_version is None:
        raise PreconditionRequired(
            "Say which version you are changing: send If-Match with the order's ETag, "
            "or version in the body."
        )
    return body_version


class PreconditionRequired(InvalidInput):
    type = "precondition-required"
    status = 428
    title = "Say which version of the order you are changing"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


async def set_status(
    resources: Resources,
    order_id: uuid.UUID,
    to: OrderStatus,
    *,
    staff: StaffSession,
    version: int | None,
    note: str | None,
) -> AdminOrderDetail:
    await change_status(
        resources,
        order_id,
        to,
        actor=Actor.STAFF,
        staff_user_id=staff.user_id,
        note=note,
        expected_version=version,
    )
    return await order_detail(resources, order_id)


def etag(version: int) -> str:
    return f'"{version}"'
