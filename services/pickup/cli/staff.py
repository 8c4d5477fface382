"""``pickup staff``: staff accounts from the command line (works in production: it needs only
the database, and Redis to end sessions).

Passwords are never command-line arguments (they would land in shell history and ``ps``):
they are prompted for, or read from standard input with ``--password-stdin``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from pickup.cli.common import fail, friendly_errors, load_or_exit
from pickup.core.errors import PickupError
from pickup.settings import Settings

T = TypeVar("T")


def _run(work: Callable[[Any, Settings], Awaitable[T]]) -> T:
    """Run ``work(sessions, settings)`` on a one-off engine; domain errors become one line."""
    from pickup.adapters.database import create_oneoff_engine, create_sessionmaker

    settings = load_or_exit()

    async def main() -> T:
        engine = create_oneoff_engine(settings.database_url)
        try:
            return await work(create_sessionmaker(engine), settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except PickupError as error:
        fail(error.detail, 1)
        raise AssertionError("unreachable") from None


async def _revoke(settings: Settings, user_id: Any) -> int:
    from pickup.adapters.redis import create_redis
    from pickup.staff.sessions import SessionStore

    redis = create_redis(settings)
    try:
        return await SessionStore(redis, settings.session_ttl_seconds).revoke_user(user_id)
    finally:
        await redis.aclose()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("no password on standard input")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("staff")
def staff() -> None:
    """Staff accounts: create, list, disable, enable, set-password."""


@staff.command("create")
@click.argument("email")
@click.option("--name", "display_name", required=True, help="The name shown on the board.")
@click.option("--role", type=click.Choice(["staff", "admin"]), default="staff", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly_errors
def create(email: str, display_name: str, role: str, password_stdin: bool) -> None:
    """Create an account."""
    from pickup.staff.service import create_staff

    password = _password(password_stdin)

    async def work(sessions: Any, _settings: Settings) -> str:
        async with sessions.begin() as session:
            user = await create_staff(
                session, email=email, display_name=display_name, password=password, role=role
            )
        return f"created {role} {user.email} ({user.id})"

    click.echo(_run(work))


@staff.command("list")
@friendly_errors
def list_command() -> None:
    """Every account, with its role and state."""
    from pickup.staff.service import list_staff

    async def work(sessions: Any, _settings: Settings) -> list[str]:
        async with sessions() as session:
            users = await list_staff(session)
        lines = []
        for user in users:
            state = "active" if user.is_active else "disabled"
            if user.locked_until is not None:
                state += f", locked until {user.locked_until:%Y-%m-%d %H:%M}Z"
            last = f"{user.last_login_at:%Y-%m-%d %H:%M}Z" if user.last_login_at else "never"
            lines.append(
                f"{user.email:<40} {user.role:<6} {state:<10} last sign-in {last}  "
                f"{user.display_name}"
            )
        return lines or ["no staff accounts"]

    for line in _run(work):
        click.echo(line)


def _set_active(email: str, active: bool) -> str:
    from pickup.staff.service import find_staff, update_staff

    async def work(sessions: Any, settings: Settings) -> str:
        async with sessions.begin() as session:
            user = await find_staff(session, email=email)
            await update_staff(session, user, is_active=active)
        if active:
            return f"enabled {user.email}"
        ended = await _revoke(settings, user.id)
        return f"disabled {user.email}; {ended} session(s) ended"

    return _run(work)


@staff.command("disable")
@click.argument("email")
@friendly_errors
def disable(email: str) -> None:
    """Disable an account and end its sessions."""
    click.echo(_set_active(email, False))


@staff.command("enable")
@click.argument("email")
@friendly_errors
def enable(email: str) -> None:
    """Enable a disabled account."""
    click.echo(_set_active(email, True))


@staff.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly_errors
def set_password_command(email: str, password_stdin: bool) -> None:
    """Set a new password (ends the account's sessions and lifts a lockout)."""
    from pickup.staff.service import find_staff, set_password

    password = _password(password_stdin)

    async def work(sessions: Any, settings: Settings) -> str:
        async with sessions.begin() as session:
            user = await find_staff(session, email=email)
            await set_password(session, user, password)
        ended = await _revoke(settings, user.id)
        return f"password of {user.email} set; {ended} session(s) ended"

    click.echo(_run(work))


@staff.command("ensure-admin")
@friendly_errors
def ensure_admin() -> None:
    """Create the admin of PICKUP_ADMIN_EMAIL / PICKUP_ADMIN_PASSWORD unless it exists
    (for an install hook: no sample data, safe to run every time)."""
    from pickup.staff.errors import StaffNotFound
    from pickup.staff.service import create_staff, find_staff

    async def work(sessions: Any, settings: Settings) -> str:
        async with sessions.begin() as session:
            try:
                user = await find_staff(session, email=settings.admin_email)
                return f"admin {user.email} already exists"
            except StaffNotFound:
                pass
            if settings.admin_password is None:
                fail("PICKUP_ADMIN_PASSWORD is required to create the admin")
            user = await create_staff(
                session,
                email=settings.admin_email,
                display_name="Admin",
                password=settings.admin_password.get_secret_value(),
                role="admin",
            )
        return f"admin {user.email} created"

    click.echo(_run(work))


COMMANDS: list[click.Command] = [staff]
