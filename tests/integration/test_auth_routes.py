"""Every staff route of the app, found by walking ``app.routes``, refuses a request without a
session (401), a staff member where it needs an admin (403), and a cookie-authenticated write
without the session's CSRF token (403). A route added later is covered without touching this
file: anything under a staff prefix counts as admin-only unless listed as open to staff."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pickup.staff.auth import CSRF_HEADER
from tests.integration.staff_helpers import Office, assert_problem, stock


@pytest.fixture
def queues_and_topics() -> bool:
    return False  # sign-in needs no queues


STAFF_PREFIXES = ("/api/admin", "/api/staff", "/admin", "/staff")
OPEN = {("POST", "/api/staff/login"), ("GET", "/admin/login")}
STAFF_LEVEL = {
    ("GET", "/admin"),
    ("GET", "/admin/inventory"),  # the page itself tells the staff role it is for admins
    ("GET", "/admin/metrics"),
    ("GET", "/api/admin/orders"),
    ("GET", "/api/admin/orders/{order_id}"),
    ("PUT", "/api/admin/orders/{order_id}/status"),
    ("GET", "/api/admin/metrics"),
    ("GET", "/api/admin/events"),
    ("GET", "/api/staff/me"),
    ("POST", "/api/staff/logout"),
}
STREAMS = {("GET", "/api/admin/events")}  # would stream forever once admitted
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def all_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, including those of included routers."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before nested routers: app.routes is flat
        contexts: Any = app.routes
    else:
        contexts = iter_route_contexts(app.routes)
    for route in contexts:
        path = getattr(route, "path", None)
        for method in getattr(route, "methods", None) or ():
            if path and method != "HEAD":
                yield method, path


def protected_routes(app: FastAPI) -> list[tuple[str, str]]:
    found = sorted(
        (method, path)
        for method, path in set(all_routes(app))
        if path.startswith(STAFF_PREFIXES) and (method, path) not in OPEN
    )
    # Not vacuous: the routes the issue names are among them.
    assert {
        ("GET", "/api/admin/orders"),
        ("PUT", "/api/admin/orders/{order_id}/status"),
        ("GET", "/api/admin/inventory"),
        ("POST", "/api/admin/inventory/{product_id}/restock"),
        ("GET", "/api/admin/metrics"),
        ("GET", "/api/admin/events"),
    } <= set(found)
    return found


def concrete(path: str) -> str:
    values = {"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "product_id": "bun"}
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match.group(1), "x"), path)


async def call(client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    kwargs: dict[str, Any] = {"json": {}} if method in UNSAFE else {}
    return await client.request(method, concrete(path), **kwargs)


async def test_every_staff_route_refuses_a_request_without_a_session(
    office_app: Office,
) -> None:
    async with office_app.client() as anonymous:
        for method, path in protected_routes(office_app.app):
            response = await call(anonymous, method, path)
            assert_problem(response, 401, "not-authenticated")
            # Nothing staff-side is ever kept by a cache, refusals included.
            assert response.headers["cache-control"] == "no-store", (method, path)


async def test_a_forged_or_ended_session_cookie_is_no_session(office_app: Office) -> None:
    async with office_app.client() as client:
        client.cookies.set("pickup_staff_session", "forged-" + "x" * 40)
        for method, path in protected_routes(office_app.app):
            assert (await call(client, method, path)).status_code == 401, (method, path)


async def test_every_admin_route_refuses_the_staff_role(
    office_app: Office, staff: httpx.AsyncClient
) -> None:
    admin_only = [route for route in protected_routes(office_app.app) if route not in STAFF_LEVEL]
    assert ("GET", "/api/admin/inventory") in admin_only
    assert ("PATCH", "/api/admin/staff/{user_id}") in admin_only
    for method, path in admin_only:
        body = assert_problem(await call(staff, method, path), 403, "forbidden")
        assert body["required_role"] == "admin"
    for method, path in set(protected_routes(office_app.app)) & STAFF_LEVEL - STREAMS:
        if method == "POST" and path.endswith("/logout"):
            continue
        assert (await call(staff, method, path)).status_code not in (401, 403), (method, path)


async def test_every_cookie_authenticated_write_needs_the_csrf_token(
    office_app: Office, admin: httpx.AsyncClient
) -> None:
    token = admin.headers.pop(CSRF_HEADER)
    writes = [route for route in protected_routes(office_app.app) if route[0] in UNSAFE]
    assert ("PUT", "/api/admin/orders/{order_id}/status") in writes
    assert ("POST", "/api/staff/logout") in writes
    for method, path in writes:
        assert_problem(await call(admin, method, path), 403, "csrf-token-invalid")
        admin.headers[CSRF_HEADER] = "not-" + token
        assert_problem(await call(admin, method, path), 403, "csrf-token-invalid")
        del admin.headers[CSRF_HEADER]

    # Nothing changed, and the same session still works with its token.
    assert await stock(office_app.resources, "bun") == (10, 0, 10)
    response = await admin.post(
        "/api/admin/inventory/bun/restock",
        json={"quantity": 2, "reason": "delivery"},
        headers={CSRF_HEADER: token},
    )
    assert response.status_code == 200, response.text
    assert await stock(office_app.resources, "bun") == (12, 0, 12)
