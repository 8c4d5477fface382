"""All SQL of the notifier: the order a notification is about and the notification log."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, text
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


async def attempts(session: AsyncSession, key: str) -> tuple[bool, int]:
    """(whether it was sent, how many attempts were recorded) for ``key``."""
    rows = await session.execute(
        select(NotificationLog.status, func.count())
        .where(NotificationLog.dedupe_key == key)
        .group_by(NotificationLog.status)
    )
    counts: dict[str, int] = {status: count for status, count in rows}
    return counts.get("sent", 0) > 0, sum(counts.values())


def record(session: AsyncSession, **values: Any) -> None:
    session.add(NotificationLog(**values))
