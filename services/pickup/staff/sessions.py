"""Server-side staff sessions in Redis.

The browser holds only a random session id (256 bits) in an HttpOnly cookie; Redis holds the
session under the id's SHA-256, so a copy of Redis (a backup, ``MONITOR``) yields no usable
cookie. A session expires after ``session_ttl_seconds`` without use: each authenticated
request slides the expiry. Each user's sessions are also listed in a set, so disabling an
account or changing its password ends every session it has.

Every session carries its own CSRF token (a synchronizer token): unsafe requests must echo it
in ``X-CSRF-Token``, which a cross-site page cannot read.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pickup.core.errors import ServiceUnavailable

logger = logging.getLogger("pickup.staff.sessions")

SESSION_PREFIX = "staff-session:"
USER_SESSIONS_PREFIX = "staff-sessions-of:"
# Longer than any session id we issue, short enough that nobody makes us hash a megabyte.
_MAX_SESSION_ID_LENGTH = 128
UNREACHABLE = "Staff sign-in is unavailable right now (the session store cannot be reached)."


@dataclass(frozen=True)
class StaffSession:
    """Who is signed in, as the session recorded it at sign-in."""

    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    csrf_token: str
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _key(session_id: str) -> str:
    return SESSION_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def _user_key(user_id: uuid.UUID | str) -> str:
    return f"{USER_SESSIONS_PREFIX}{user_id}"


class SessionStore:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    async def create(
        self, *, user_id: uuid.UUID, email: str, display_name: str, role: str
    ) -> tuple[str, StaffSession]:
        """A new session with a fresh id and CSRF token: ``(session id, session)``."""
        session_id = secrets.token_urlsafe(32)
        session = StaffSession(
            user_id=user_id,
            email=email,
            display_name=display_name,
            role=role,
            csrf_token=secrets.token_urlsafe(32),
            created_at=datetime.now(UTC),
        )
        key = _key(session_id)
        fields = {
            "user_id": str(user_id),
            "email": email,
            "display_name": display_name,
            "role": role,
            "csrf_token": session.csrf_token,
            "created_at": session.created_at.isoformat(),
        }
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields)
                pipe.expire(key, self.ttl_seconds)
                pipe.sadd(_user_key(user_id), key)
                pipe.smembers(_user_key(user_id))
                *_, members = await pipe.execute()
            await self._prune(user_id, members)
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(UNREACHABLE) from error
        return session_id, session

    async def get(self, session_id: str | None) -> StaffSession | None:
        """The live session for ``session_id`` (its expiry slides forward), or ``None``."""
        if not session_id or len(session_id) > _MAX_SESSION_ID_LENGTH:
            return None
        key = _key(session_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(key)
                pipe.expire(key, self.ttl_seconds)
                fields, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(UNREACHABLE) from error
        if not fields:
            return None
        try:
            return StaffSession(
                user_id=uuid.UUID(fields["user_id"]),
                email=fields["email"],
                display_name=fields["display_name"],
                role=fields["role"],
                csrf_token=fields["csrf_token"],
                created_at=datetime.fromisoformat(fields["created_at"]),
            )
        except (KeyError, ValueError):
            logger.warning("staff.session_corrupt")
            await self.delete(session_id)
            return None

    async def _prune(self, user_id: uuid.UUID, members: set[str]) -> None:
        """Drop index entries of sessions that expired (the index itself never expires)."""
        members = list(members)
        if len(members) < 2:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.exists(member)
            alive = await pipe.execute()
        if dead := [member for member, exists in zip(members, alive, strict=True) if not exists]:
            await self.redis.srem(_user_key(user_id), *dead)

    async def delete(self, session_id: str | None) -> None:
        """End a session (sign-out, or the old session at a new sign-in). Never raises."""
        if not session_id or len(session_id) > _MAX_SESSION_ID_LENGTH:
            return
        key = _key(session_id)
        try:
            user_id = await self.redis.hget(key, "user_id")
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if user_id:
                    pipe.srem(_user_key(user_id), key)
                await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("staff.session_delete_failed error=%s", error)

    async def revoke_user(self, user_id: uuid.UUID) -> int:
        """End every session of ``user_id``; how many there were. Raises when Redis is down."""
        index = _user_key(user_id)
        try:
            keys = list(await self.redis.smembers(index))
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.delete(key)
                pipe.delete(index)
                results = await pipe.execute()
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(UNREACHABLE) from error
        return sum(int(deleted) for deleted in results[: len(keys)])
