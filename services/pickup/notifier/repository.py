"""All SQL of the notifier: the order a notification is about and the notification log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickup.adapters.orm import NotificationLog, Order


async def get_order(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    return await session.get(Order, order_id)  # items load eagerly (selectin)


async def lock_dedupe_key(session: AsyncSession, key: str) -> None:
    """Serialise the senders of one notification until this transaction ends.

    Two deliveries of the same message handled at once would otherwise both see "not sent
    yet". SQLite (development) serialises every writing transaction anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )


@dataclass(frozen=True)
class Claim:
    """A ``sending`` row: a send in progress, or one whose sender died."""

    id: int
    attempt: int
    updated_at: datetime


@dataclass(frozen=True)
class History:
    """What the log says about one dedupe key."""

    sent: bool
    attempts: int  # rows of every status
    claim: Claim | None  # the ``sending`` row, if there is one


async def history(session: AsyncSession, key: str) -> History:
    rows = (
        await session.execute(
            select(
                NotificationLog.id,
                NotificationLog.status,
                NotificationLog.attempt,
                NotificationLog.updated_at,
            ).where(NotificationLog.dedupe_key == key)
        )
    ).all()
    claim = next(
        (Claim(row.id, row.attempt, row.updated_at) for row in rows if row.status == "sending"),
        None,
    )
    return History(
        sent=any(row.status == "sent" for row in rows),
        attempts=max((row.attempt for row in rows), default=0),
        claim=claim,
    )


async def claim(session: AsyncSession, **values: Any) -> int:
    """Insert a ``sending`` row; its id."""
    row = NotificationLog(status="sending", **values)
    session.add(row)
    await session.flush()
    return row.id


async def settle(
    session: AsyncSession,
    row_id: int,
    *,
    status: str,
    now: datetime,
    expected: str = "sending",
    provider_message_id: str | None = None,
    error: str | None = None,
) -> bool:
    """Write the outcome onto row ``row_id`` if it is still ``expected``; whether it was."""
    result = await session.execute(
        update(NotificationLog)
        .where(NotificationLog.id == row_id, NotificationLog.status == expected)
        .values(status=status, provider_message_id=provider_message_id, error=error, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
