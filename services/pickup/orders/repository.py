"""All SQL of the order feature: idempotency keys, pickup slots, orders and their history."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from pickup.adapters.database import dialect_insert
from pickup.adapters.orm import IdempotencyKey, Order, PickupSlot, ReservationIntent
from pickup.core.errors import Conflict, ServiceUnavailable

IDEMPOTENCY_LOCK = timedelta(seconds=30)


class IdempotencyKeyReused(Conflict):
    type = "idempotency-key-reused"
    status = 422
    title = "This Idempotency-Key was used for a different request"


class IdempotencyInProgress(Conflict):
    type = "idempotency-key-in-progress"
    title = "A request with this Idempotency-Key is still being processed"

    def __init__(self) -> None:
        super().__init__("Wait a moment and retry with the same key to get its result.")
        self.retry_after = 1


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


@asynccontextmanager
async def database_errors(detail: str) -> AsyncIterator[None]:
    """Connection-level failures become a 503 the caller may retry; bugs stay bugs."""
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError) as error:
        raise ServiceUnavailable(detail) from error
    except DBAPIError as error:
        if error.connection_invalidated or _server_unavailable(error):
            raise ServiceUnavailable(detail) from error
        raise


# SQLSTATEs of a server that cannot serve right now: connection exceptions (class 08) and
# shutting down, crashed, or still starting up ("cannot connect now", during crash recovery).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")


def _server_unavailable(error: DBAPIError) -> bool:
    driver_error = getattr(error.orig, "driver_exception", None) or error.orig
    state = getattr(driver_error, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES)


# --- Idempotency keys ---------------------------------------------------------------------------


async def claim_idempotency_key(
    session: AsyncSession, *, scope: str, key: str, request_hash: str, now: datetime, ttl: timedelta
) -> Replay | None:
    """Claim ``key`` for this request (None), or say what happened to the earlier one.

    A completed request is replayed; a different body under the same key is refused; a request
    still in flight answers 409 unless its claim is older than the lock (its process died).
    """
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at < now,
        )
    )
    inserted = await session.execute(
        dialect_insert(session, IdempotencyKey)
        .values(
            scope=scope,
            key=key,
            request_hash=request_hash,
            state="in_progress",
            created_at=now,
            expires_at=now + ttl,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
    )
    if inserted.rowcount == 1:
        return None
    existing = await session.get(IdempotencyKey, (scope, key), with_for_update=True)
    if existing is None:  # expired and deleted by a concurrent request: let the client retry
        raise IdempotencyInProgress()
    if existing.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "The same Idempotency-Key was sent with a different body. Use a new key for a "
            "new order."
        )
    if existing.state == "completed" and existing.response_body is not None:
        return Replay(existing.response_status or 200, existing.response_body)
    if existing.created_at < now - IDEMPOTENCY_LOCK:
        existing.created_at = now
        return None
    raise IdempotencyInProgress()


async def complete_idempotency_key(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    status: int,
    body: dict[str, Any],
    order_id: uuid.UUID,
    claimed_at: datetime,
) -> None:
    """Store the response, if this request still holds the claim it made at ``claimed_at``.

    A claim older than the lock is taken over by a retry (its process looked dead); the
    request that made it may still be alive, only slow. Its completion then matches nothing
    and raises :class:`IdempotencyInProgress`, rolling back its order: one key, one order.
    """
    result = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
            IdempotencyKey.state == "in_progress",
            IdempotencyKey.created_at == claimed_at,
        )
        .values(state="completed", response_status=status, response_body=body, order_id=order_id)
    )
    if result.rowcount != 1:
        raise IdempotencyInProgress()


async def release_idempotency_key(
    session: AsyncSession, *, scope: str, key: str, claimed_at: datetime
) -> None:
    """Free ``key`` for a retry, if this request still holds the claim it made at
    ``claimed_at``: a claim taken over by a retry is the retry's to complete or release."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.key == key,
            IdempotencyKey.state == "in_progress",
            IdempotencyKey.created_at == claimed_at,
        )
    )


# --- Reservation intents ---------------------------------------------------------------------


async def record_intent(
    session: AsyncSession, order_id: uuid.UUID, lines: list[dict[str, Any]], now: datetime
) -> None:
    session.add(ReservationIntent(order_id=order_id, lines=lines, created_at=now))


async def settle_intent(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """Delete the intent; False if it is gone (the sweeper released its stock already)."""
    result = await session.execute(
        delete(ReservationIntent).where(ReservationIntent.order_id == order_id)
    )
    return result.rowcount == 1


async def lapsed_intents(
    session: AsyncSession, older_than: datetime, limit: int
) -> list[ReservationIntent]:
    """Intents older than ``older_than``, locked; those another process holds are skipped."""
    result = await session.scalars(
        select(ReservationIntent)
        .where(ReservationIntent.created_at < older_than)
        .order_by(ReservationIntent.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(result)


async def lock_intent(session: AsyncSession, order_id: uuid.UUID) -> ReservationIntent | None:
    return await session.get(ReservationIntent, order_id, with_for_update=True)


# --- Pickup slots ---------------------------------------------------------------------------------


async def booked_counts(session: AsyncSession, starts: Iterable[datetime]) -> dict[datetime, int]:
    wanted = list(starts)
    if not wanted:
        return {}
    rows = await session.execute(
        select(PickupSlot.slot_start, PickupSlot.booked).where(PickupSlot.slot_start.in_(wanted))
    )
    return {start: booked for start, booked in rows.all()}


async def book_slot(session: AsyncSession, slot_start: datetime, capacity: int) -> bool:
    """Take one place in the slot if it has room: a conditional update, never read-then-write."""
    await session.execute(
        dialect_insert(session, PickupSlot)
        .values(slot_start=slot_start, capacity=capacity, booked=0)
        .on_conflict_do_nothing(index_elements=["slot_start"])
    )
    result = await session.execute(
        update(PickupSlot)
        .where(PickupSlot.slot_start == slot_start, PickupSlot.booked < PickupSlot.capacity)
        .values(booked=PickupSlot.booked + 1)
    )
    return result.rowcount == 1


# --- Orders ------------------------------------------------------------------------------


async def get_order(
    session: AsyncSession, order_id: uuid.UUID, *, history: bool = False
) -> Order | None:
    query = select(Order).where(Order.id == order_id)
    if history:
        query = query.options(selectinload(Order.history))
    return await session.scalar(query)
