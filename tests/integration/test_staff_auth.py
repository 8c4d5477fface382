"""Staff sign-in over HTTP on real PostgreSQL and Redis: cookies, CSRF tokens, lockout, rate
limits, fixation, logout, expiry, and accounts that are disabled or get a new password."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from pickup.adapters.orm import StaffUser
from pickup.api.app import create_app
from pickup.staff.auth import CSRF_HEADER, SESSION_COOKIE
from pickup.staff.sessions import SESSION_PREFIX
from tests.integration.staff_helpers import (
    ADMIN_EMAIL,
    PASSWORD,
    STAFF_EMAIL,
    Office,
    assert_problem,
    sign_in,
)


@pytest.fixture
def queues_and_topics() -> bool:
    return False  # sign-in needs no queues


def session_key(session_id: str) -> str:
    return SESSION_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/staff/login", json={"email": email, "password": password})


async def staff_user(office_app: Office, email: str) -> StaffUser:
    async with office_app.resources.sessions() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.email == email))
    assert user is not None
    return user


async def test_sign_in_sets_an_http_only_strict_cookie_and_returns_the_csrf_token(
    office_app: Office,
) -> None:
    async with office_app.client() as client:
        response = await login(client, "  ADA@shop.example ", PASSWORD)

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["email"] == ADMIN_EMAIL
        assert body["role"] == "admin"
        assert body["expires_in_seconds"] == office_app.resources.settings.session_ttl_seconds
        assert response.headers["cache-control"] == "no-store"
        cookies = response.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
        assert "HttpOnly" in session_cookie
        assert "SameSite=strict" in session_cookie
        assert "Max-Age" not in session_cookie
        csrf_cookie = next(c for c in cookies if c.startswith("pickup_csrf="))
        assert "HttpOnly" not in csrf_cookie
        assert body["csrf_token"] in csrf_cookie

        me = await client.get("/api/staff/me")
        assert me.status_code == 200
        assert me.json()["csrf_token"] == body["csrf_token"]
        user = await staff_user(office_app, ADMIN_EMAIL)
        assert user.last_login_at is not None


async def test_a_wrong_password_and_an_unknown_email_read_the_same(office_app: Office) -> None:
    async with office_app.client() as client:
        wrong = assert_problem(
            await login(client, ADMIN_EMAIL, "not the password"), 401, "invalid-credentials"
        )
        unknown = assert_problem(
            await login(client, "nobody@shop.example", PASSWORD), 401, "invalid-credentials"
        )
        assert wrong["detail"] == unknown["detail"]
        assert SESSION_COOKIE not in client.cookies


async def test_repeated_failures_lock_the_account_even_against_the_right_password(
    office_app: Office,
) -> None:
    settings = office_app.resources.settings
    async with office_app.client() as client:
        for _ in range(settings.login_max_failures):
            assert (await login(client, STAFF_EMAIL, "wrong password!")).status_code == 401

        locked = await login(client, STAFF_EMAIL, PASSWORD)
        body = assert_problem(locked, 423, "account-locked")
        assert 0 < int(locked.headers["retry-after"]) <= settings.login_lockout_seconds
        assert body["retry_after"] == int(locked.headers["retry-after"])
        user = await staff_user(office_app, STAFF_EMAIL)
        assert user.locked_until is not None and user.locked_until > datetime.now(UTC)

        # An email without an account locks the same way, so lockouts reveal nothing.
        for _ in range(settings.login_max_failures):
            assert (await login(client, "ghost@shop.example", "x")).status_code == 401
        assert_problem(await login(client, "ghost@shop.example", "x"), 423, "account-locked")

        # When the lock has run out the right password works and the count starts again.
        async with office_app.resources.sessions.begin() as session:
            await session.execute(
                update(StaffUser)
                .where(StaffUser.id == user.id)
                .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert (await login(client, STAFF_EMAIL, PASSWORD)).status_code == 200
        user = await staff_user(office_app, STAFF_EMAIL)
        assert user.locked_until is None and user.failed_login_count == 0


async def test_concurrent_failures_are_all_counted(office_app: Office) -> None:
    async with office_app.client() as client:
        attempts = [login(client, STAFF_EMAIL, f"wrong {n}") for n in range(3)]
        assert {r.status_code for r in await asyncio.gather(*attempts)} == {401}
    user = await staff_user(office_app, STAFF_EMAIL)
    assert user.locked_until is not None


async def test_sign_in_attempts_are_rate_limited_per_client(office_app: Office) -> None:
    settings = office_app.resources.settings.model_copy(update={"rate_limit_login_per_minute": 2})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            for _ in range(2):
                assert (await login(client, ADMIN_EMAIL, "wrong password")).status_code == 401
            limited = await login(client, ADMIN_EMAIL, PASSWORD)
    assert_problem(limited, 429, "rate-limited")
    assert int(limited.headers["retry-after"]) >= 1


async def test_signing_in_always_issues_a_new_session_and_ends_the_old_one(
    office_app: Office,
) -> None:
    async with office_app.client() as client:
        await sign_in(client)
        first = client.cookies[SESSION_COOKIE]
        await sign_in(client)  # sends the first cookie along
        second = client.cookies[SESSION_COOKIE]
        assert second != first
        assert await office_app.resources.redis.exists(session_key(first)) == 0

    async with office_app.client() as attacker:
        # A session id planted before sign-in is never the one in use after it.
        attacker.cookies.set(SESSION_COOKIE, first)
        assert_problem(await attacker.get("/api/staff/me"), 401, "not-authenticated")


async def test_logout_ends_the_session_and_needs_the_csrf_token(admin: httpx.AsyncClient) -> None:
    session_id = admin.cookies[SESSION_COOKIE]
    token = admin.headers.pop(CSRF_HEADER)
    assert_problem(await admin.post("/api/staff/logout"), 403, "csrf-token-invalid")

    response = await admin.post("/api/staff/logout", headers={CSRF_HEADER: token})
    assert response.status_code == 204
    assert any(
        c.startswith(SESSION_COOKIE + '=""') or "Max-Age=0" in c
        for c in response.headers.get_list("set-cookie")
    )
    admin.cookies.set(SESSION_COOKIE, session_id)
    assert_problem(await admin.get("/api/admin/orders"), 401, "not-authenticated")


async def test_a_session_ends_after_its_idle_time_and_each_use_extends_it(
    office_app: Office, admin: httpx.AsyncClient
) -> None:
    redis = office_app.resources.redis
    key = session_key(admin.cookies[SESSION_COOKIE])
    ttl = office_app.resources.settings.session_ttl_seconds
    await redis.expire(key, 100)
    assert (await admin.get("/api/staff/me")).status_code == 200
    assert ttl - 5 <= await redis.ttl(key) <= ttl  # slid back to the full idle time

    await redis.pexpire(key, 1)
    await asyncio.sleep(0.05)
    assert_problem(await admin.get("/api/staff/me"), 401, "not-authenticated")


async def test_disabling_an_account_ends_its_sessions_and_refuses_its_sign_in(
    office_app: Office, admin: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    user = await staff_user(office_app, STAFF_EMAIL)
    assert (await staff.get("/api/admin/orders")).status_code == 200

    response = await admin.patch(f"/api/admin/staff/{user.id}", json={"is_active": False})
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False

    assert_problem(await staff.get("/api/admin/orders"), 401, "not-authenticated")
    assert_problem(await login(staff, STAFF_EMAIL, PASSWORD), 401, "invalid-credentials")
    listed = (await admin.get("/api/admin/staff")).json()
    assert {(row["email"], row["is_active"]) for row in listed} == {
        (ADMIN_EMAIL, True),
        (STAFF_EMAIL, False),
    }


async def test_an_admin_cannot_lock_themselves_out(
    office_app: Office, admin: httpx.AsyncClient
) -> None:
    me = await staff_user(office_app, ADMIN_EMAIL)
    for change in ({"is_active": False}, {"role": "staff"}):
        assert_problem(await admin.patch(f"/api/admin/staff/{me.id}", json=change), 409, "conflict")
    assert (await admin.get("/api/staff/me")).status_code == 200


async def test_admins_create_accounts_and_set_passwords(
    office_app: Office, admin: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    new = {"email": "Kim@Shop.Example", "display_name": "Kim", "password": "a long password"}
    created = await admin.post("/api/admin/staff", json=new)
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "kim@shop.example"
    assert created.json()["role"] == "staff"
    assert_problem(await admin.post("/api/admin/staff", json=new), 409, "staff-exists")
    weak = await admin.post("/api/admin/staff", json={**new, "email": "x@y.z", "password": "short"})
    assert assert_problem(weak, 422, "validation-error")["errors"][0]["field"] == "body.password"

    user = await staff_user(office_app, STAFF_EMAIL)
    response = await admin.put(
        f"/api/admin/staff/{user.id}/password", json={"password": "a brand new password"}
    )
    assert response.status_code == 204
    assert_problem(await staff.get("/api/staff/me"), 401, "not-authenticated")
    assert (await login(staff, STAFF_EMAIL, PASSWORD)).status_code == 401
    assert (await login(staff, STAFF_EMAIL, "a brand new password")).status_code == 200
