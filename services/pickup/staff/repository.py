"""All SQL of staff accounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickup.adapters.orm import StaffUser


async def by_email(session: AsyncSession, email: str) -> StaffUser | None:
    return await session.scalar(select(StaffUser).where(StaffUser.email == email))


async def by_id(session: AsyncSession, user_id: uuid.UUID) -> StaffUser | None:
    return await session.get(StaffUser, user_id)


async def all_staff(session: AsyncSession) -> Sequence[StaffUser]:
    return (await session.scalars(select(StaffUser).order_by(StaffUser.email))).all()


async def record_failure(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    max_failures: int,
    lockout: timedelta,
    now: datetime,
) -> datetime | None:
    """Count one failed sign-in in a single UPDATE (concurrent failures are all counted).

    The failure that reaches ``max_failures`` locks the account and starts a fresh count;
    returns when the lock ends, if this failure set one.
    """
    reached = StaffUser.failed_login_count + 1 >= max_failures
    result = await session.execute(
        update(StaffUser)
        .where(StaffUser.id == user_id)
        .values(
            failed_login_count=case((reached, 0), else_=StaffUser.failed_login_count + 1),
            locked_until=case((reached, now + lockout), else_=StaffUser.locked_until),
        )
        .returning(StaffUser.locked_until)
        .execution_options(synchronize_session=False)
    )
    locked_until = result.scalar_one_or_none()
    return locked_until if locked_until is not None and locked_until > now else None


async def record_success(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    await session.execute(
        update(StaffUser)
        .where(StaffUser.id == user_id)
        .values(failed_login_count=0, locked_until=None, last_login_at=now)
        .execution_options(synchronize_session=False)
    )
