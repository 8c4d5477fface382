"""``pickup seed``: the sample menu, stock, orders in every status and the admin account.

Loading is idempotent: what exists is left alone. ``--reset`` (development and test only)
empties the products table, the queues, the orders side and Redis, then loads everything anew.
Stock stays consistent with the orders: every sample order that still holds a reservation is
counted in its products' ``reserved``, also when the products are reloaded into a fresh
(in-memory) DynamoDB while the orders survived in the SQLite file.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from pickup.adapters.orm import Base, Order, OrderItem, OrderStatusHistory, StaffUser
from pickup.core.errors import InvalidInput
from pickup.core.inventory import ProductWithInventory
from pickup.core.orders import OrderStatus, new_order_code
from pickup.runtime import Resources
from pickup.seed.menu import sample_products
from pickup.settings import Environment, Settings
from pickup.staff.passwords import hash_password

CUSTOMERS = [
    ("Amara Okafor", "amara@example.com", "+447700900101", True),
    ("Ben Carter", "ben.carter@example.com", None, False),
    ("Chloé Martin", "chloe@example.com", "+447700900103", False),
    ("Dev Patel", "dev.patel@example.com", "+447700900104", True),
    ("Elena Rossi", "elena.rossi@example.com", None, False),
    ("Finn O'Brien", "finn@example.com", "+447700900106", True),
    ("Grace Kim", "grace.kim@example.com", None, False),
    ("Hassan Ali", "hassan@example.com", "+447700900108", True),
]

# (status, days ago, how many): history in the past days, and today's live board.
SAMPLE_ORDERS = [
    (OrderStatus.PICKED_UP, 5, 3),
    (OrderStatus.PICKED_UP, 4, 3),
    (OrderStatus.CANCELLED, 4, 1),
    (OrderStatus.PICKED_UP, 3, 4),
    (OrderStatus.EXPIRED, 3, 1),
    (OrderStatus.PICKED_UP, 2, 3),
    (OrderStatus.CANCELLED, 1, 1),
    (OrderStatus.PICKED_UP, 1, 4),
    (OrderStatus.PICKED_UP, 0, 2),
    (OrderStatus.READY, 0, 2),
    (OrderStatus.PREPARING, 0, 2),
    (OrderStatus.CONFIRMED, 0, 3),
    (OrderStatus.PENDING, 0, 2),
]

PATHS = {
    OrderStatus.PENDING: [OrderStatus.PENDING],
    OrderStatus.CONFIRMED: [OrderStatus.PENDING, OrderStatus.CONFIRMED],
    OrderStatus.PREPARING: [OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.PREPARING],
    OrderStatus.READY: [
        OrderStatus.PENDING,
        OrderStatus.CONFIRMED,
        OrderStatus.PREPARING,
        OrderStatus.READY,
    ],
    OrderStatus.PICKED_UP: [
        OrderStatus.PENDING,
        OrderStatus.CONFIRMED,
        OrderStatus.PREPARING,
        OrderStatus.READY,
        OrderStatus.PICKED_UP,
    ],
    OrderStatus.CANCELLED: [OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.CANCELLED],
    OrderStatus.EXPIRED: [OrderStatus.PENDING, OrderStatus.EXPIRED],
}

HOLDING = {OrderStatus.PENDING, OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY}


def _reservation_state(status: OrderStatus) -> str:
    if status in HOLDING:
        return "held"
    return "confirmed" if status is OrderStatus.PICKED_UP else "released"


async def seed(settings: Settings, *, reset: bool = False) -> list[str]:
    if reset and settings.env is Environment.PRODUCTION:
        raise InvalidInput("--reset wipes data and is refused in production", field="reset")
    report: list[str] = []
    async with Resources.open(settings) as resources:
        if reset:
            from pickup.provisioning import Provisioner

            steps = await Provisioner(settings, resources.aws).reset()
            report.append(f"reset: products table and {len(steps)} AWS resources reloaded")
            await _empty_orders_side(resources)
            await resources.redis.flushdb()
            report.append("reset: orders, staff and Redis emptied")
        report.append(await _seed_admin(resources))
        products = [ProductWithInventory(**record) for record in sample_products(settings.currency)]
        report.append(await _seed_orders(resources, products))
        report.append(await _seed_products(resources, products))
    return report


def run_seed(settings: Settings, *, reset: bool = False) -> list[str]:
    return asyncio.run(seed(settings, reset=reset))


async def _empty_orders_side(resources: Resources) -> None:
    async with resources.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


async def _seed_admin(resources: Resources) -> str:
    settings = resources.settings
    email = settings.admin_email.lower()
    async with resources.sessions.begin() as session:
        existing = await session.scalar(select(StaffUser).where(StaffUser.email == email))
        if existing is not None:
            return f"staff: admin {email} already exists"
        if settings.admin_password is None:
            return "staff: no admin created (set PICKUP_ADMIN_PASSWORD to create one)"
        password_hash = await asyncio.to_thread(
            hash_password, settings.admin_password.get_secret_value()
        )
        session.add(
            StaffUser(
                email=email,
                display_name="Admin",
                password_hash=password_hash,
                role="admin",
                is_active=True,
            )
        )
    return f"staff: admin {email} created"


async def _seed_orders(resources: Resources, products: list[ProductWithInventory]) -> str:
    async with resources.sessions.begin() as session:
        count = await session.scalar(select(func.count()).select_from(Order))
        if count:
            return f"orders: {count} already present"
        rng = random.Random(20261125)  # noqa: S311 (sample data, not secrets)
        # Only well-stocked products go into sample orders, so their reservations always fit.
        plenty = [p for p in products if p.available > 3 * max(p.low_stock_threshold, 1)]
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        created = 0
        for status, days_ago, how_many in SAMPLE_ORDERS:
            for index in range(how_many):
                placed = now - timedelta(days=days_ago, hours=2 + index, minutes=rng.randint(0, 50))
                if days_ago == 0 and status in HOLDING:
                    placed = now - timedelta(minutes=5 + 7 * index)
                session.add(_sample_order(rng, status, placed, plenty, resources.settings.currency))
                created += 1
    return f"orders: {created} sample orders created"


def _sample_order(
    rng: random.Random,
    status: OrderStatus,
    placed: datetime,
    products: list[ProductWithInventory],
    currency: str,
) -> Order:
    name, email, phone, sms = rng.choice(CUSTOMERS)
    chosen = rng.sample(products, k=rng.randint(1, 3))
    items = [
        OrderItem(
            product_id=product.id,
            product_name=product.name,
            unit_price_cents=product.price_cents,
            quantity=(quantity := rng.randint(1, 2)),
            line_total_cents=product.price_cents * quantity,
        )
        for product in chosen
    ]
    subtotal = sum(item.line_total_cents for item in items)
    pickup_at = placed + timedelta(minutes=20 + 5 * rng.randint(0, 6))
    history = []
    previous: OrderStatus | None = None
    for step, state in enumerate(PATHS[status]):
        history.append(
            OrderStatusHistory(
                from_status=previous,
                to_status=state,
                actor_type="customer" if previous is None else "staff",
                note=None,
                created_at=placed + timedelta(minutes=4 * step),
            )
        )
        previous = state
    history[-1].actor_type = "system" if status is OrderStatus.EXPIRED else history[-1].actor_type
    token = secrets.token_urlsafe(24)
    return Order(
        code=new_order_code(),
        status=status,
        customer_name=name,
        customer_email=email,
        customer_phone=phone,
        sms_opt_in=sms and phone is not None,
        pickup_at=pickup_at,
        estimated_ready_at=pickup_at - timedelta(minutes=5),
        subtotal_cents=subtotal,
        total_cents=subtotal,
        currency=currency,
        lookup_token_hash=hashlib.sha256(token.encode()).hexdigest(),
        reservation_state=_reservation_state(status),
        reservation_expires_at=placed + timedelta(minutes=15),
        created_at=placed,
        updated_at=history[-1].created_at,
        items=items,
        history=history,
    )


async def _held_quantities(resources: Resources) -> Counter[str]:
    query = (
        select(OrderItem.product_id, func.sum(OrderItem.quantity))
        .join(Order, Order.id == OrderItem.order_id)
        .where(Order.reservation_state == "held")
        .group_by(OrderItem.product_id)
    )
    async with resources.sessions() as session:
        rows = (await session.execute(query)).all()
    return Counter({product_id: int(quantity) for product_id, quantity in rows})


async def _seed_products(resources: Resources, products: list[ProductWithInventory]) -> str:
    existing = {product.id for product in await resources.inventory.list_products()}
    held = await _held_quantities(resources)
    loaded = 0
    for product in products:
        if product.id in existing:
            continue
        reserved = held.get(product.id, 0)
        on_hand = max(product.on_hand, reserved)
        await resources.inventory.put_product(
            product.model_copy(
                update={"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}
            )
        )
        loaded += 1
    if not loaded:
        return f"menu: all {len(products)} products already present"
    return f"menu: {loaded} products loaded ({len(products) - loaded} already present)"
