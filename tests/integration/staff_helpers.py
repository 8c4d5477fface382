"""Helpers of the staff and back-office tests (their fixtures are in staff_fixtures)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from pickup.core.inventory import ProductWithInventory
from pickup.runtime import Resources
from pickup.staff.auth import CSRF_HEADER
from pickup.staff.service import hash_in_thread

PROBLEM = "application/problem+json"
PROBLEMS = "https://pickup.dev/problems/"
ADMIN_EMAIL = "ada@shop.example"
STAFF_EMAIL = "sam@shop.example"
PASSWORD = "correct horse battery"


_hashes: dict[str, str] = {}


async def password_hash(password: str = PASSWORD) -> str:
    """Argon2 costs ~0.1 s a hash: the accounts every test starts with share one."""
    if password not in _hashes:
        _hashes[password] = await hash_in_thread(password)
    return _hashes[password]


def product(product_id: str, stock: int, price: int = 300, **extra: Any) -> ProductWithInventory:
    values: dict[str, Any] = {
        "id": product_id,
        "name": product_id.replace("-", " ").title(),
        "category": "Bakery",
        "price_cents": price,
        "on_hand": stock,
        "reserved": 0,
        "available": stock,
        "max_per_order": 10,
        "low_stock_threshold": 5,
        "critical_threshold": 2,
    }
    values.update(extra)
    return ProductWithInventory(**values)


PRODUCTS = (
    product("croissant", 30, 280),
    product("bun", 10, 330),
    product("loaf", 4, 520, reorder_quantity=6),
    product("tart", 0, 450),
    product("pie", 20, 500, managed_by="kitchen/pie-thresholds"),
)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == PROBLEMS + slug, body
    return body


@dataclass
class Office:
    app: FastAPI
    resources: Resources
    transport: httpx.ASGITransport

    def client(self) -> httpx.AsyncClient:
        """A client with a cookie jar of its own (a browser of its own)."""
        return httpx.AsyncClient(transport=self.transport, base_url="http://shop.test")


async def sign_in(
    client: httpx.AsyncClient, email: str = ADMIN_EMAIL, password: str = PASSWORD
) -> str:
    """Sign ``client`` in; its cookie jar keeps the session, and every later request carries
    the CSRF header. Returns the CSRF token."""
    response = await client.post("/api/staff/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["csrf_token"]
    client.headers[CSRF_HEADER] = token
    return token


async def place_order(
    client: httpx.AsyncClient,
    items: list[tuple[str, int]] | None = None,
    **customer: Any,
) -> dict[str, Any]:
    body = {
        "customer": {"name": "Grace Hopper", "email": "grace@example.com", **customer},
        "items": [
            {"product_id": product_id, "quantity": quantity}
            for product_id, quantity in (items or [("croissant", 2), ("bun", 1)])
        ],
    }
    response = await client.post(
        "/api/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    return response.json()


async def stock(resources: Resources, product_id: str) -> tuple[int, int, int]:
    item = await resources.inventory.get_product(product_id, consistent_read=True)
    assert item is not None
    return item.on_hand, item.reserved, item.available
