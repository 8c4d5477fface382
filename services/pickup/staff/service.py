"""Staff accounts and sign-in.

Sign-in: the account's failures are counted in PostgreSQL; the ``login_max_failures``-th
failure in a row locks it for ``login_lockout_seconds`` (423), during which even the right
password is refused. Emails with no account are counted the same way in Redis and "lock" the
same way, so the answers never tell whether an account exists; an unknown email also costs
one Argon2 verification, so timing does not tell either. Argon2 runs in a worker thread:
hashing takes tens of milliseconds of CPU the event loop must not spend.

Services never commit: the caller opens the transaction (the API, or a CLI command).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pickup.adapters.orm import StaffUser
from pickup.core.errors import InvalidInput, PickupError, ServiceUnavailable
from pickup.settings import Settings
from pickup.staff import repository
from pickup.staff.errors import AccountLocked, InvalidCredentials, StaffExists, StaffNotFound
from pickup.staff.passwords import (
    MIN_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    verify_password,
)
from pickup.staff.schemas import MAX_PASSWORD_LENGTH
from pickup.staff.sessions import SessionStore, StaffSession

logger = logging.getLogger("pickup.staff")

ROLES = ("staff", "admin")
UNKNOWN_FAILURES_PREFIX = "login-failures:"
_dummy_hash: str | None = None


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254 or any(char.isspace() for char in email):
        raise InvalidInput("an email address such as sam@shop.example", field="email")
    return email


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            field="password",
        )


def check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")


async def hash_in_thread(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def _verify_in_thread(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


async def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_in_thread("not-a-password-of-anyone")
    return _dummy_hash


# --- Accounts ---------------------------------------------------------------------------------


async def create_staff(
    session: AsyncSession, *, email: str, display_name: str, password: str, role: str = "staff"
) -> StaffUser:
    email = normalise_email(email)
    check_password(password)
    check_role(role)
    if not display_name.strip() or len(display_name) > 100:
        raise InvalidInput("a display name of 1-100 characters", field="display_name")
    if await repository.by_email(session, email) is not None:
        raise StaffExists(f"There is already a staff account for {email}.")
    user = StaffUser(
        email=email,
        display_name=display_name.strip(),
        password_hash=await hash_in_thread(password),
        role=role,
        is_active=True,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent create of the same email
        raise StaffExists(f"There is already a staff account for {email}.") from None
    return user


async def list_staff(session: AsyncSession) -> Sequence[StaffUser]:
    return await repository.all_staff(session)


async def find_staff(
    session: AsyncSession, *, email: str | None = None, user_id: uuid.UUID | None = None
) -> StaffUser:
    user = (
        await repository.by_id(session, user_id)
        if user_id is not None
        else await repository.by_email(session, normalise_email(email or ""))
    )
    if user is None:
        raise StaffNotFound(f"There is no staff account {email or user_id}.")
    return user


async def set_password(session: AsyncSession, user: StaffUser, password: str) -> None:
    """A new password; it also lifts a lockout. End the user's sessions after the commit."""
    check_password(password)
    user.password_hash = await hash_in_thread(password)
    user.failed_login_count = 0
    user.locked_until = None
    await session.flush()


async def update_staff(
    session: AsyncSession,
    user: StaffUser,
    *,
    display_name: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
) -> bool:
    """Apply the given changes; whether the user's sessions must end (role or access changed)."""
    revoke = False
    if display_name is not None:
        user.display_name = display_name.strip()
    if role is not None and role != user.role:
        check_role(role)
        user.role = role
        revoke = True
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        revoke = revoke or not is_active
    await session.flush()
    return revoke


# --- Sign-in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    session_id: str
    session: StaffSession


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


async def login(
    sessions: async_sessionmaker[AsyncSession],
    store: SessionStore,
    settings: Settings,
    *,
    email: str,
    password: str,
    previous_session_id: str | None = None,
    now: datetime | None = None,
) -> SignedIn:
    """Check the credentials and open a new session (the old one, if any, ends: no fixation).

    Raises :class:`InvalidCredentials` (401) or :class:`AccountLocked` (423).
    """
    now = now or datetime.now(UTC)
    email = email.strip().lower()
    lockout = timedelta(seconds=settings.login_lockout_seconds)
    async with sessions() as session:
        user = await repository.by_email(session, email)
    if user is None:
        raise await _unknown_email_failure(store, settings, email, password)
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(_retry_after(user.locked_until, now))
    if not await _verify_in_thread(user.password_hash, password):
        async with sessions.begin() as session:
            locked_until = await repository.record_failure(
                session, user.id, max_failures=settings.login_max_failures, lockout=lockout, now=now
            )
        if locked_until is not None:
            logger.warning("staff.account_locked user_id=%s until=%s", user.id, locked_until)
        raise InvalidCredentials("The email or password is not right.")
    if not user.is_active:
        # Said the same way as a wrong password: a disabled account reveals nothing.
        logger.info("staff.login_refused_inactive user_id=%s", user.id)
        raise InvalidCredentials("The email or password is not right.")
    async with sessions.begin() as session:
        await repository.record_success(session, user.id, now=now)
        if needs_rehash(user.password_hash):
            fresh = await session.get(StaffUser, user.id)
            if fresh is not None:
                fresh.password_hash = await hash_in_thread(password)
    await store.delete(previous_session_id)
    session_id, staff_session = await store.create(
        user_id=user.id, email=user.email, display_name=user.display_name, role=user.role
    )
    logger.info("staff.signed_in user_id=%s role=%s", user.id, user.role)
    return SignedIn(session_id, staff_session)


async def _unknown_email_failure(
    store: SessionStore, settings: Settings, email: str, password: str
) -> PickupError:
    """The failure a real account would give, at the same cost (counted, then locked)."""
    key = UNKNOWN_FAILURES_PREFIX + hashlib.sha256(email.encode()).hexdigest()
    try:
        ttl = await store.redis.pttl(key)
        if ttl is not None and ttl > 0 and int(await store.redis.get(key) or 0) < 0:
            return AccountLocked(max(1, math.ceil(ttl / 1000)))
        await _verify_in_thread(await _dummy(), password)
        failures = int(await store.redis.incr(key))
        if failures == 1:
            await store.redis.expire(key, settings.login_lockout_seconds)
        if failures >= settings.login_max_failures:
            # A negative count marks the lock; it lasts the lockout from now.
            await store.redis.set(key, -1, ex=settings.login_lockout_seconds)
    except (RedisError, OSError) as error:
        raise ServiceUnavailable("Sign-in is unavailable right now; please try again.") from error
    return InvalidCredentials("The email or password is not right.")
