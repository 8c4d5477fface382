from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from pickup.adapters.orm import Order, OrderItem, OrderStatusHistory, StaffUser
from pickup.core.errors import InvalidInput
from pickup.core.orders import OrderStatus
from pickup.provisioning import bootstrap
from pickup.runtime import Resources
from pickup.seed.loader import seed
from pickup.settings import Settings
from pickup.staff.passwords import verify_password


@pytest.fixture
async def resources(settings: Settings, db_engine: Any, redis: Any) -> Any:
    await bootstrap(settings)
    async with Resources.open(settings) as opened:
        yield opened


async def held_per_product(resources: Resources) -> Counter[str]:
    query = (
        select(OrderItem.product_id, func.sum(OrderItem.quantity))
        .join(Order)
        .where(Order.reservation_state == "held")
        .group_by(OrderItem.product_id)
    )
    async with resources.sessions() as session:
        return Counter(dict((await session.execute(query)).all()))


async def test_seed_loads_a_menu_orders_in_every_status_and_an_admin(
    make_settings: Any, resources: Resources
) -> None:
    settings = make_settings(
        resource_prefix=resources.settings.resource_prefix, admin_password="a-long-admin-secret"
    )
    await seed(settings)

    products = await resources.inventory.list_products()
    assert len(products) >= 25
    assert len({product.category for product in products}) >= 5
    statuses = Counter(product.stock_status for product in products)
    assert statuses["in_stock"] and statuses["low_stock"] and statuses["out_of_stock"]
    assert all(product.image and product.price_cents > 0 for product in products)

    async with resources.sessions() as session:
        orders = (await session.scalars(select(Order))).all()
        assert {order.status for order in orders} == set(OrderStatus)
        assert len({order.created_at.date() for order in orders}) >= 4
        assert len({order.code for order in orders}) == len(orders)
        history = await session.scalar(select(func.count()).select_from(OrderStatusHistory))
        assert history > len(orders)
        admin = await session.scalar(select(StaffUser))
    assert admin.email == "admin@pickup.example"
    assert admin.role == "admin"
    assert admin.password_hash.startswith("$argon2id$")
    assert verify_password(admin.password_hash, "a-long-admin-secret")


async def test_stock_counts_every_reservation_the_sample_orders_hold(
    resources: Resources,
) -> None:
    await seed(resources.settings)
    held = await held_per_product(resources)
    assert held, "today's board has orders holding stock"
    for product in await resources.inventory.list_products():
        assert product.reserved == held.get(product.id, 0)
        assert product.on_hand == product.available + product.reserved


async def test_seeding_twice_adds_nothing(resources: Resources) -> None:
    await seed(resources.settings)
    report = await seed(resources.settings)
    assert report[1].startswith("orders: ") and report[1].endswith("already present")
    assert report[2] == "menu: all 26 products already present"


async def test_a_fresh_product_table_reloads_with_the_reservations_of_existing_orders(
    resources: Resources,
) -> None:
    await seed(resources.settings)
    dynamodb = await resources.aws.client("dynamodb")
    await dynamodb.delete_table(TableName=resources.settings.names.products_table)
    await bootstrap(resources.settings)
    await seed(resources.settings)
    held = await held_per_product(resources)
    for product in await resources.inventory.list_products():
        assert product.reserved == held.get(product.id, 0)


async def test_reset_wipes_and_reloads_the_development_data(resources: Resources) -> None:
    await seed(resources.settings)
    await resources.inventory.restock("espresso", 500)
    await resources.redis.set("cart:leftover", "1")
    report = await seed(resources.settings, reset=True)
    assert report[0].startswith("reset: ")
    espresso = await resources.inventory.get_product("espresso")
    assert espresso is not None and espresso.on_hand < 500
    assert await resources.redis.get("cart:leftover") is None


async def test_reset_is_refused_in_production(make_settings: Any) -> None:
    production = make_settings(
        env="production", secret_key="s" * 40, aws_access_key_id=None, aws_secret_access_key=None
    )
    with pytest.raises(InvalidInput, match="refused in production"):
        await seed(production, reset=True)
