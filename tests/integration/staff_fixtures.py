"""Fixtures of the staff and back-office tests (a pytest plugin: ``pytest_plugins``): a
provisioned shop, staff accounts and signed-in HTTP clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from pickup.adapters.dynamodb import products_table_definition
from pickup.adapters.orm import StaffUser
from pickup.api.app import create_app
from pickup.provisioning import bootstrap
from pickup.runtime import Resources
from pickup.settings import Settings
from tests.integration.staff_helpers import (
    ADMIN_EMAIL,
    PRODUCTS,
    STAFF_EMAIL,
    Office,
    password_hash,
    sign_in,
)


@pytest.fixture
def office_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        opening_hours="mon-sun 00:00-24:00",
        lead_minutes=10,
        slot_capacity=1000,
        rate_limit_checkout_per_minute=10_000,
        rate_limit_cart_per_minute=10_000,
        rate_limit_login_per_minute=1_000,
        login_max_failures=3,
        login_lockout_seconds=60,
        sse_heartbeat_seconds=0.3,
    )


@pytest.fixture
def queues_and_topics() -> bool:
    """Whether the shop gets its queues and topics too; modules that only need the products
    table override this with False (provisioning them is most of a test's set-up time)."""
    return True


@pytest.fixture
async def office(
    office_settings: Settings, db_engine: Any, redis: Any, queues_and_topics: bool
) -> AsyncIterator[Resources]:
    """A provisioned shop holding PRODUCTS, with an admin and a staff account."""
    if queues_and_topics:
        await bootstrap(office_settings)
    async with Resources.open(office_settings) as resources:
        if not queues_and_topics:
            name = office_settings.names.products_table
            dynamodb = await resources.aws.client("dynamodb")
            await dynamodb.create_table(**products_table_definition(name))
            await dynamodb.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
        await asyncio.gather(
            *(resources.inventory.put_product(item, replace_inventory=True) for item in PRODUCTS)
        )
        async with resources.sessions.begin() as session:
            for email, name, role in ((ADMIN_EMAIL, "Ada", "admin"), (STAFF_EMAIL, "Sam", "staff")):
                session.add(
                    StaffUser(
                        email=email,
                        display_name=name,
                        role=role,
                        password_hash=await password_hash(),
                    )
                )
        yield resources


@pytest.fixture
async def office_app(office: Resources) -> AsyncIterator[Office]:
    app = create_app(office.settings)
    async with app.router.lifespan_context(app):
        yield Office(app, app.state.resources, httpx.ASGITransport(app=app))


@pytest.fixture
async def admin(office_app: Office) -> AsyncIterator[httpx.AsyncClient]:
    async with office_app.client() as client:
        await sign_in(client, ADMIN_EMAIL)
        yield client


@pytest.fixture
async def staff(office_app: Office) -> AsyncIterator[httpx.AsyncClient]:
    async with office_app.client() as client:
        await sign_in(client, STAFF_EMAIL)
        yield client


@pytest.fixture
async def customer(office_app: Office) -> AsyncIterator[httpx.AsyncClient]:
    async with office_app.client() as client:
        yield client
