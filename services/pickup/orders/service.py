"""Checkout and order lookup.

Checkout, in order (see docs/architecture.md, "The order path"):

1. claim the Idempotency-Key (a retry replays the first answer; a concurrent duplicate waits);
2. validate everything that needs no write: lines and their products, prices (DynamoDB's,
   never the client's), quantity limits, the pickup time against opening hours and lead time;
3. reserve every line in one DynamoDB transaction (a shortfall: 409, nothing held);
4. one PostgreSQL transaction: book the pickup slot (a conditional update), insert the order
   (PENDING), its items, its first history row and the outbox message, and complete the key;
   if it fails, the reservation is released (compensation) and nothing is left half-done;
5. after the commit: send the outbox message at once (the relay retries if SQS is down),
   clear the cart, invalidate the menu cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from pickup import live
from pickup.adapters.orm import Order, OrderItem, OrderStatusHistory
from pickup.core.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from pickup.core.inventory import (
    InsufficientStock,
    ProductWithInventory,
    StockLine,
    UnknownProduct,
    merge_lines,
)
from pickup.core.orders import Actor, OrderStatus, ReservationState, new_order_code
from pickup.core.pickup_times import SlotRules
from pickup.menu.cache import invalidate_menu
from pickup.observability.metrics import CHECKOUT_STOCK_CONFLICTS as STOCK_CONFLICTS
from pickup.observability.metrics import ORDER_EVENTS
from pickup.orders import repository
from pickup.orders.schemas import (
    CheckoutAccepted,
    CheckoutRequest,
    Customer,
    HistoryEntry,
    OrderDetails,
    OrderLineOut,
    OrderStatusView,
    PickupSlots,
    PickupSlotView,
)
from pickup.orders.status import describe, progress
from pickup.orders.status_cache import cached_status, store_status
from pickup.outbox.relay import OutboxRelay, outbox_message
from pickup.runtime import Resources

logger = logging.getLogger("pickup.orders")

ORDERS_PLACED = ORDER_EVENTS.labels("placed")

IDEMPOTENCY_SCOPE = "orders"
# After a failed fast-path send, checkouts leave their messages to the relay loop for a while:
# while SQS is unreachable each attempt held a database connection for seconds, and a few
# orders a second exhausted the pool (503s for everyone) although the outbox takes them all.
FAST_PATH_PAUSE_SECONDS = 5.0
_fast_path_paused_until = 0.0

ASAP_CANDIDATES = 96  # slots looked at for "as soon as possible" (a day of 15-minute slots)
CODE_ATTEMPTS = 3


class OrderNotFound(NotFound):
    type = "order-not-found"
    title = "No such order"


class SlotFull(Conflict):
    type = "slot-full"
    title = "That pickup time is fully booked"

    def __init__(self, detail: str, next_available: datetime | None) -> None:
        super().__init__(detail)
        self.next_available = next_available

    def extensions(self) -> dict[str, Any]:
        if self.next_available is None:
            return {}
        return {"next_available": self.next_available.isoformat()}


class ReservationLapsed(ServiceUnavailable):
    type = "reservation-lapsed"
    title = "The order took too long to save"


class EmptyOrder(InvalidInput):
    type = "empty-order"
    title = "There is nothing to order"


@dataclass(frozen=True)
class CheckoutResult:
    status: int
    body: dict[str, Any]
    replayed: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_fingerprint(request: CheckoutRequest, cart_id: str | None) -> str:
    # The cart id is part of the request when the lines come from the cart.
    basis = request.model_dump_json() + (f"|cart:{cart_id}" if request.items is None else "")
    return hashlib.sha256(basis.encode()).hexdigest()


async def place_order(
    resources: Resources,
    request: CheckoutRequest,
    *,
    idempotency_key: str,
    cart_id: str | None,
    now: datetime | None = None,
) -> CheckoutResult:
    now = now or datetime.now(UTC)
    settings = resources.settings
    claim_detail = "Orders cannot be taken right now. Please try again in a moment."
    async with repository.database_errors(claim_detail), resources.sessions.begin() as session:
        replay = await repository.claim_idempotency_key(
            session,
            scope=IDEMPOTENCY_SCOPE,
            key=idempotency_key,
            request_hash=request_fingerprint(request, cart_id),
            now=now,
            ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
        )
    if replay is not None:
        return CheckoutResult(replay.status, replay.body, replayed=True)
    intent = _Intent(uuid.uuid4())
    try:
        accepted = await _place(resources, request, idempotency_key, cart_id, now, intent)
    except BaseException as error:
        if isinstance(error, InsufficientStock):
            STOCK_CONFLICTS.inc()
        # The key is free again, so the client can retry the same request with it; the
        # intent goes too when nothing can be held (else the sweeper settles it).
        try:
            async with resources.sessions.begin() as session:
                await repository.release_idempotency_key(
                    session, scope=IDEMPOTENCY_SCOPE, key=idempotency_key, claimed_at=now
                )
                if intent.recorded and not intent.maybe_held:
                    await repository.settle_intent(session, intent.order_id)
        except Exception:  # it expires after the lock time anyway
            logger.warning("checkout.idempotency_release_failed key=%s", idempotency_key)
        raise
    ORDERS_PLACED.inc()
    return CheckoutResult(202, accepted, replayed=False)


async def _order_lines(
    resources: Resources, request: CheckoutRequest, cart_id: str | None
) -> list[StockLine]:
    if request.items is not None:
        raw = [(item.product_id, item.quantity) for item in request.items]
    elif cart_id is not None:
        raw = list((await resources.carts.get(cart_id)).items())
    else:
        raw = []
    if not raw:
        raise EmptyOrder("Your cart is empty: add something from the menu first.", "body.items")
    if len({product_id for product_id, _ in raw}) > resources.settings.cart_max_lines:
        raise InvalidInput(
            f"At most {resources.settings.cart_max_lines} different items per order.", "body.items"
        )
    return merge_lines(StockLine.of(product_id, quantity) for product_id, quantity in raw)


def _check_products(lines: list[StockLine], products: dict[str, ProductWithInventory]) -> None:
    for line in lines:
        product = products.get(line.product_id)
        if product is None:
            raise InvalidInput(
                f"There is no product {line.product_id!r} on the menu.",
                "body.items",
            )
        if line.quantity > product.max_per_order:
            raise InvalidInput(
                f"At most {product.max_per_order} x {product.name} per order.",
                "body.items",
            )


def _candidate_slots(
    rules: SlotRules, requested: datetime | None, now: datetime
) -> tuple[list[datetime], datetime | None]:
    """Slots to try, in order, and the requested time (None: as soon as possible)."""
    if requested is not None:
        try:
            return [rules.slot_of(requested, now)], requested
        except InvalidInput as error:
            raise InvalidInput(error.detail, "body.pickup_time") from None
    candidates = []
    for start in rules.upcoming_slots(now):
        candidates.append(start)
        if len(candidates) == ASAP_CANDIDATES:
            break
    if not candidates:
        raise InvalidInput("We are not open in the coming days.", "body.pickup_time")
    return candidates, None


async def _place(
    resources: Resources,
    request: CheckoutRequest,
    idempotency_key: str,
    cart_id: str | None,
    now: datetime,
    intent: _Intent,
) -> dict[str, Any]:
    settings = resources.settings
    lines = await _order_lines(resources, request, cart_id)
    products = await resources.inventory.get_products(
        [line.product_id for line in lines], consistent_read=True
    )
    _check_products(lines, products)
    candidates, requested = _candidate_slots(settings.slot_rules, request.pickup_time, now)

    order_id = intent.order_id
    # The intent comes first: if this process dies after reserving and before the order is
    # saved, the sweeper finds the intent and releases what the reservation holds.
    detail = "Orders cannot be taken right now; nothing was charged or held. Please retry."
    async with repository.database_errors(detail), resources.sessions.begin() as session:
        await repository.record_intent(
            session, order_id, [line.model_dump() for line in lines], datetime.now(UTC)
        )
    intent.recorded = intent.maybe_held = True
    try:
        await resources.inventory.reserve(lines, order_id=str(order_id))
    except (InsufficientStock, UnknownProduct):
        intent.maybe_held = False  # refused outright: nothing is held
        raise
    try:
        persisted, body = await _persist(
            resources,
            request,
            idempotency_key,
            intent,
            lines,
            products,
            candidates,
            requested,
            now,
        )
    except BaseException:
        await _release_after_failure(resources, intent, lines)
        raise

    global _fast_path_paused_until
    if time.monotonic() >= _fast_path_paused_until:
        relay = OutboxRelay(resources)
        try:
            await asyncio.wait_for(relay.flush(persisted.outbox_ids), timeout=5)
        except Exception:  # the relay loop sends it later: an SQS outage never loses an order
            logger.warning("checkout.fast_path_send_failed order_id=%s", order_id)
            _fast_path_paused_until = time.monotonic() + FAST_PATH_PAUSE_SECONDS
    await _after_checkout(resources, cart_id, request, body)
    logger.info("order.placed order_id=%s code=%s", order_id, body["code"])
    return body


@dataclass
class _Intent:
    """The reservation intent of one checkout: recorded yet? could stock be held for it?"""

    order_id: uuid.UUID
    recorded: bool = False
    maybe_held: bool = False
    committing: bool = False


@dataclass(frozen=True)
class _Persisted:
    order_id: uuid.UUID
    outbox_ids: list[int]


async def _persist(
    resources: Resources,
    request: CheckoutRequest,
    idempotency_key: str,
    intent: _Intent,
    lines: list[StockLine],
    products: dict[str, ProductWithInventory],
    candidates: list[datetime],
    requested: datetime | None,
    now: datetime,
) -> tuple[_Persisted, dict[str, Any]]:
    settings = resources.settings
    order_id = intent.order_id
    rules = settings.slot_rules
    token = secrets.token_urlsafe(24)
    detail = "Your order could not be saved right now; nothing was charged or held. Please retry."
    for attempt in range(CODE_ATTEMPTS):
        code = new_order_code()
        intent.committing = False
        try:
            async with repository.database_errors(detail), resources.sessions.begin() as session:
                slot = await _book_first_free(
                    session, candidates, settings.slot_capacity, requested
                )
                pickup_at = requested or max(slot, rules.earliest(now))
                items = [
                    OrderItem(
                        product_id=line.product_id,
                        product_name=products[line.product_id].name,
                        unit_price_cents=products[line.product_id].price_cents,
                        quantity=line.quantity,
                        line_total_cents=products[line.product_id].price_cents * line.quantity,
                    )
                    for line in lines
                ]
                subtotal = sum(item.line_total_cents for item in items)
                currency = next(iter(products.values())).currency
                order = Order(
                    id=order_id,
                    code=code,
                    status=OrderStatus.PENDING,
                    customer_name=request.customer.name,
                    customer_email=str(request.customer.email),
                    customer_phone=request.customer.phone,
                    sms_opt_in=request.customer.sms_opt_in,
                    special_instructions=request.special_instructions or None,
                    pickup_at=pickup_at,
                    pickup_slot=slot,
                    estimated_ready_at=pickup_at,
                    subtotal_cents=subtotal,
                    total_cents=subtotal,
                    currency=currency,
                    lookup_token_hash=hash_token(token),
                    reservation_state=ReservationState.HELD,
                    reservation_expires_at=now
                    + timedelta(seconds=settings.reservation_ttl_seconds),
                    created_at=now,
                    updated_at=now,
                    items=items,
                    history=[
                        OrderStatusHistory(
                            from_status=None,
                            to_status=OrderStatus.PENDING,
                            actor_type=Actor.CUSTOMER,
                            created_at=now,
                        )
                    ],
                )
                message = outbox_message(
                    kind="sqs",
                    destination=settings.names.order_queue,
                    message_type="order.placed",
                    payload={
                        "order_id": str(order_id),
                        "code": code,
                        "placed_at": now.isoformat(),
                        "pickup_at": pickup_at.isoformat(),
                        "lines": [line.model_dump() for line in lines],
                    },
                    dedupe=f"order.placed:{order_id}",
                )
                session.add_all([order, message])
                await session.flush()
                body = _accepted(order, token).model_dump(mode="json")
                # Last, so the intent's row lock is held only for the commit.
                if not await repository.settle_intent(session, order_id):
                    raise ReservationLapsed(
                        "Your order took too long to save and its items were put back on "
                        "sale. Please try again."
                    )
                await repository.complete_idempotency_key(
                    session,
                    scope=IDEMPOTENCY_SCOPE,
                    key=idempotency_key,
                    status=202,
                    body=body,
                    order_id=order_id,
                    claimed_at=now,
                )
                intent.committing = True  # from here on, whether it committed may be unknown
            return _Persisted(order_id, [message.id]), body
        except IntegrityError as error:
            # Only a clash of the random counter code is worth another try.
            if "code" not in str(error.orig) or attempt == CODE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _book_first_free(
    session: Any, candidates: list[datetime], capacity: int, requested: datetime | None
) -> datetime:
    booked = await repository.booked_counts(session, candidates)
    for start in candidates:
        if booked.get(start, 0) < capacity and await repository.book_slot(session, start, capacity):
            return start
    if requested is not None:
        raise SlotFull(
            f"The {requested:%H:%M} slot is fully booked; please choose another time.", None
        )
    raise SlotFull("Every pickup slot soon is fully booked; please try a later time.", None)


async def _release_after_failure(
    resources: Resources, intent: _Intent, lines: list[StockLine]
) -> None:
    """Compensation: the order was not saved, so the stock it holds goes back on sale.

    Failed before its COMMIT was sent, the order certainly was not saved: the stock is
    released at once, PostgreSQL or not. Otherwise the intent decides, under its row lock:
    gone means the order was saved after all (the error came after the commit) or the
    sweeper released it. If this fails, the intent stays and the sweeper releases the stock
    after its grace; the products' holds make every later attempt a no-op.
    """
    order_id = intent.order_id
    if not intent.committing:
        for attempt in range(3):
            try:
                await resources.inventory.release_held(lines, order_id=str(order_id))
                intent.maybe_held = False
                logger.info("checkout.reservation_released order_id=%s", order_id)
                return
            except ServiceUnavailable:
                await asyncio.sleep(0.2 * 2**attempt)
            except Exception:
                break
        logger.error("checkout.compensation_deferred order_id=%s", order_id)
        return
    for attempt in range(3):
        try:
            async with repository.database_errors(""), resources.sessions.begin() as session:
                if await repository.lock_intent(session, order_id) is None:
                    return
                if await resources.inventory.release_held(lines, order_id=str(order_id)):
                    logger.info("checkout.reservation_released order_id=%s", order_id)
                await repository.settle_intent(session, order_id)
            return
        except ServiceUnavailable:
            await asyncio.sleep(0.2 * 2**attempt)
        except Exception:
            break
    logger.error(
        "checkout.compensation_deferred order_id=%s lines=%s (the sweeper releases it)",
        order_id,
        [(line.product_id, line.quantity) for line in lines],
    )


async def _after_checkout(
    resources: Resources, cart_id: str | None, request: CheckoutRequest, body: dict[str, Any]
) -> None:
    if cart_id is not None and request.items is None:
        try:
            await resources.carts.clear(cart_id)
        except Exception:
            logger.warning("checkout.cart_clear_failed")
    await invalidate_menu(resources.redis)
    board = {key: body[key] for key in ("order_id", "code", "status", "pickup_at", "total_cents")}
    board["customer_name"] = request.customer.name
    board["item_count"] = sum(item["quantity"] for item in body["items"])
    await live.publish(
        resources.redis,
        live.STAFF,
        "order.placed",
        board,
        max_len=resources.settings.live_history_size,
    )


def _lines_out(order: Order) -> list[OrderLineOut]:
    return [
        OrderLineOut(
            product_id=item.product_id,
            name=item.product_name,
            quantity=item.quantity,
            unit_price_cents=item.unit_price_cents,
            line_total_cents=item.line_total_cents,
        )
        for item in order.items
    ]


def _accepted(order: Order, token: str) -> CheckoutAccepted:
    return CheckoutAccepted(
        order_id=order.id,
        code=order.code,
        status=order.status,
        status_url=f"/api/orders/status/{order.id}",
        details_url=f"/api/orders/{order.id}",
        lookup_token=token,
        pickup_at=order.pickup_at,
        estimated_pickup_at=order.estimated_ready_at or order.pickup_at,
        items=_lines_out(order),
        subtotal_cents=order.subtotal_cents,
        total_cents=order.total_cents,
        currency=order.currency,
    )


# --- Lookup ---------------------------------------------------------------------------------------


def status_view(order: Order) -> OrderStatusView:
    label, message, final = describe(order.status)
    return OrderStatusView(
        order_id=order.id,
        code=order.code,
        status=order.status,
        label=label,
        message=message,
        steps=progress(order.status),
        pickup_at=order.pickup_at,
        estimated_ready_at=order.estimated_ready_at,
        updated_at=order.updated_at,
        final=final,
    )


async def order_status_json(resources: Resources, order_id: uuid.UUID) -> str:
    """The status view as JSON, from the cache when present."""
    if (cached := await cached_status(resources.redis, order_id)) is not None:
        return cached
    detail = "Order status is unavailable right now. Please try again in a moment."
    async with repository.database_errors(detail), resources.sessions() as session:
        order = await repository.get_order(session, order_id)
    if order is None:
        raise OrderNotFound(f"There is no order {order_id}.")
    body = status_view(order).model_dump_json()
    await store_status(resources.redis, order_id, body, resources.settings.status_cache_ttl_seconds)
    return body


async def order_details(
    resources: Resources, order_id: uuid.UUID, token: str | None, *, staff: bool = False
) -> OrderDetails:
    """The full order, for staff or whoever holds its lookup token; anyone else learns nothing."""
    not_found = OrderNotFound(f"There is no order {order_id}, or the lookup token does not match.")
    if not token and not staff:
        raise not_found
    detail = "Order details are unavailable right now. Please try again in a moment."
    async with repository.database_errors(detail), resources.sessions() as session:
        order = await repository.get_order(session, order_id, history=True)
    if order is None:
        raise not_found
    if not staff and not hmac.compare_digest(order.lookup_token_hash, hash_token(token or "")):
        raise not_found
    return OrderDetails(
        order_id=order.id,
        code=order.code,
        status=order.status,
        customer=Customer(
            name=order.customer_name,
            email=order.customer_email,
            phone=order.customer_phone,
            sms_opt_in=order.sms_opt_in,
        ),
        special_instructions=order.special_instructions,
        pickup_at=order.pickup_at,
        estimated_ready_at=order.estimated_ready_at,
        items=_lines_out(order),
        subtotal_cents=order.subtotal_cents,
        total_cents=order.total_cents,
        currency=order.currency,
        history=[
            HistoryEntry(
                from_status=entry.from_status,
                to_status=entry.to_status,
                actor=entry.actor_type.value,
                note=entry.note,
                at=entry.created_at,
            )
            for entry in sorted(order.history, key=lambda entry: entry.created_at)
        ],
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


async def pickup_slots(resources: Resources, now: datetime | None = None) -> PickupSlots:
    now = now or datetime.now(UTC)
    settings = resources.settings
    rules = settings.slot_rules
    starts = list(rules.upcoming_slots(now, days=min(settings.max_days_ahead, 2)))
    detail = "Pickup times are unavailable right now. Please try again in a moment."
    async with repository.database_errors(detail), resources.sessions() as session:
        booked = await repository.booked_counts(session, starts)
    views = []
    for start in starts:
        remaining = max(settings.slot_capacity - booked.get(start, 0), 0)
        views.append(
            PickupSlotView(
                start=start,
                end=start + rules.slot_length,
                available=remaining > 0,
                remaining=remaining,
            )
        )
    asap = next((max(v.start, rules.earliest(now)) for v in views if v.available), None)
    return PickupSlots(timezone=settings.timezone, asap=asap, slots=views)
