"""No insecure direct object references: one customer's lookup token never opens another's
order (details or live stream), order ids are random UUID4s, the short counter code opens
nothing, and the token itself is kept only as a hash."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from pickup.adapters.orm import Order
from tests.integration.staff_helpers import Office, assert_problem, place_order


@pytest.fixture
async def orders(office_app: Office) -> AsyncIterator[tuple[dict, dict]]:
    async with office_app.client() as alice, office_app.client() as bob:
        yield (
            await place_order(alice, name="Alice", email="alice@example.com"),
            await place_order(bob, name="Bob", email="bob@example.com"),
        )


async def stream_status(client: httpx.AsyncClient, url: str, **kwargs: object) -> int:
    """The status a live stream opens with; the stream itself is closed at once."""
    async with client.stream("GET", url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status_code


async def test_one_customers_token_never_opens_anothers_order(
    office_app: Office, orders: tuple[dict, dict]
) -> None:
    alice, bob = orders
    async with office_app.client() as client:
        for order, token in ((alice, bob["lookup_token"]), (bob, alice["lookup_token"])):
            details = await client.get(order["details_url"], headers={"X-Order-Token": token})
            assert_problem(details, 404, "order-not-found")
            by_query = await client.get(order["details_url"], params={"token": token})
            assert_problem(by_query, 404, "order-not-found")
            events = f"/api/orders/{order['order_id']}/events"
            assert await stream_status(client, events, params={"token": token}) == 404
            assert await stream_status(client, events, headers={"X-Order-Token": token}) == 404
            assert await stream_status(client, events) == 404

        # Each token does open its own order: the refusals above are about ownership.
        mine = {"X-Order-Token": alice["lookup_token"]}
        own = await client.get(alice["details_url"], headers=mine)
        assert own.status_code == 200
        assert own.json()["customer"]["email"] == "alice@example.com"
        assert "bob@example.com" not in own.text


async def test_order_ids_are_random_and_tokens_are_long_and_stored_hashed(
    office_app: Office, orders: tuple[dict, dict]
) -> None:
    for order in orders:
        assert uuid.UUID(order["order_id"]).version == 4
        assert len(order["lookup_token"]) >= 32
    async with office_app.resources.sessions() as session:
        stored = (await session.scalars(select(Order))).all()
    tokens = {order["lookup_token"] for order in orders}
    for row in stored:
        columns = {column.key: getattr(row, column.key) for column in Order.__table__.columns}
        assert not tokens & {str(value) for value in columns.values()}


async def test_the_counter_code_opens_no_order(
    office_app: Office, orders: tuple[dict, dict]
) -> None:
    alice, _ = orders
    code = alice["code"]
    async with office_app.client() as client:
        for path in (f"/api/orders/{code}", f"/api/orders/status/{code}"):
            assert (await client.get(path)).status_code == 422, path
        lookup = await client.get("/order-status", params={"order": code})
        assert lookup.status_code == 422  # asks for the full order number; no redirect
        assert alice["order_id"] not in lookup.text
        page = await client.get(f"/orders/{code}/status")
        assert page.status_code == 404
        assert alice["order_id"] not in page.text


async def test_the_customer_status_view_carries_no_personal_data(
    office_app: Office, orders: tuple[dict, dict]
) -> None:
    alice, _ = orders
    async with office_app.client() as client:
        status = await client.get(f"/api/orders/status/{alice['order_id']}")
        page = await client.get(f"/orders/{alice['order_id']}/status")
    assert status.status_code == 200
    for text in (status.text, page.text):
        assert "alice@example.com" not in text
        assert not re.search(r"\bAlice\b", text)
