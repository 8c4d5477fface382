"""``pickup staff`` against the real database and Redis, as an operator would run it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from pickup.adapters.orm import StaffUser
from pickup.cli.main import main
from pickup.settings import Settings
from pickup.staff.passwords import verify_password
from pickup.staff.sessions import SessionStore


@pytest.fixture
def env(settings: Settings, db_engine: Any, redis: Any) -> dict[str, str]:
    return {
        "PICKUP_ENV": "test",
        "PICKUP_DATABASE_URL": settings.database_url,
        "PICKUP_REDIS_URL": settings.redis_url,
    }


async def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    """The command in a thread of its own: it runs its own event loop, as in a shell."""
    return await asyncio.to_thread(CliRunner().invoke, main, ["staff", *args], env=env, input=stdin)


async def accounts(db_engine: Any) -> dict[str, StaffUser]:
    from pickup.adapters.database import create_sessionmaker

    async with create_sessionmaker(db_engine)() as session:
        return {user.email: user for user in await session.scalars(select(StaffUser))}


async def test_create_list_disable_enable_and_set_password(
    env: dict[str, str], db_engine: Any, redis: Any, settings: Settings
) -> None:
    created = await run(
        env,
        "create",
        "Chef@Shop.Example",
        "--name",
        "Chef",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert created.exit_code == 0, created.output
    assert "created admin chef@shop.example" in created.output
    user = (await accounts(db_engine))["chef@shop.example"]
    assert user.role == "admin" and verify_password(user.password_hash, "a long enough password")

    again = await run(
        env,
        "create",
        "chef@shop.example",
        "--name",
        "Chef",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert again.exit_code == 1 and "already a staff account" in again.output
    short = await run(
        env, "create", "x@shop.example", "--name", "X", "--password-stdin", stdin="short\n"
    )
    assert short.exit_code == 1 and "12" in short.output

    listed = await run(env, "list")
    assert (
        listed.exit_code == 0 and "chef@shop.example" in listed.output and "active" in listed.output
    )

    store = SessionStore(redis, settings.session_ttl_seconds)
    session_id, _ = await store.create(
        user_id=user.id, email=user.email, display_name="Chef", role="admin"
    )
    disabled = await run(env, "disable", "chef@shop.example")
    assert disabled.exit_code == 0, disabled.output
    assert "1 session(s) ended" in disabled.output
    assert await store.get(session_id) is None
    assert (await accounts(db_engine))["chef@shop.example"].is_active is False
    assert "disabled" in (await run(env, "list")).output

    assert (await run(env, "enable", "chef@shop.example")).exit_code == 0
    assert (await accounts(db_engine))["chef@shop.example"].is_active is True

    changed = await run(
        env,
        "set-password",
        "chef@shop.example",
        "--password-stdin",
        stdin="another long password\n",
    )
    assert changed.exit_code == 0, changed.output
    user = (await accounts(db_engine))["chef@shop.example"]
    assert verify_password(user.password_hash, "another long password")

    missing = await run(env, "disable", "nobody@shop.example")
    assert missing.exit_code == 1 and "no staff account" in missing.output


async def test_ensure_admin_creates_the_configured_admin_once(
    env: dict[str, str], db_engine: Any
) -> None:
    without = await run(env, "ensure-admin")
    assert without.exit_code == 2 and "PICKUP_ADMIN_PASSWORD" in without.output
    env = {**env, "PICKUP_ADMIN_EMAIL": "boss@shop.example", "PICKUP_ADMIN_PASSWORD": "x" * 16}
    first = await run(env, "ensure-admin")
    assert first.exit_code == 0 and "created" in first.output
    second = await run(env, "ensure-admin")
    assert second.exit_code == 0 and "already exists" in second.output
    assert (await accounts(db_engine))["boss@shop.example"].role == "admin"
