"""Per-client rate limits in Redis, shared by every API process.

Fixed windows that start at a client's first request: one Lua script increments the counter
and, on the first hit, sets the window's expiry, so concurrent requests (in one process or
many) can never together pass more than ``limit``. A refused request still counts but never
extends the window, so hammering does not lock a client out for longer. The trade-off against
a sliding window: a client can fit up to ``2 * limit`` requests around a window boundary,
which is fine for abuse protection and costs one key and one round trip per request.

Clients are told apart by IP address (``request.client.host``); behind a proxy uvicorn's
``--proxy-headers`` / ``--forwarded-allow-ips`` put the real client address there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from redis.exceptions import RedisError

from pickup.api.deps import ResourcesDep
from pickup.core.errors import PickupError, ServiceUnavailable
from pickup.settings import Settings

logger = logging.getLogger("pickup.api.ratelimit")

UNREACHABLE = "The rate limiter is unreachable, so writes are paused; please try again shortly."

# Returns {hits in this window, milliseconds until the window ends}.
_HIT = """
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}
"""


class RateLimited(PickupError):
    type = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, limit: int, window_seconds: int, retry_after: int) -> None:
        super().__init__(
            f"At most {limit} requests per {window_seconds} seconds; "
            f"please try again in {retry_after} seconds."
        )
        self.limit = limit
        self.window_seconds = window_seconds
        self.retry_after = retry_after

    def extensions(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "window_seconds": self.window_seconds,
            "retry_after": self.retry_after,
        }


class RateLimiter:
    def __init__(self, redis: Any, *, key_prefix: str = "ratelimit:") -> None:
        self.redis = redis
        self._script = redis.register_script(_HIT)
        self.key_prefix = key_prefix

    async def hit(self, bucket: str, client: str, limit: int, window_seconds: int = 60) -> None:
        """Count one request of ``client`` in ``bucket``; :class:`RateLimited` past ``limit``.

        Redis being unreachable raises :class:`ServiceUnavailable`: limits guard writes, and
        letting writes through unlimited during an outage is what an attacker would want.
        """
        for name, value in (("limit", limit), ("window_seconds", window_seconds)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        key = f"{self.key_prefix}{bucket}:{client}"
        try:
            hits, ttl_ms = await self._script(keys=[key], args=[window_seconds * 1000])
        except RedisError as error:
            logger.warning("ratelimit.unavailable", extra={"bucket": bucket, "error": str(error)})
            raise ServiceUnavailable(UNREACHABLE) from error
        if int(hits) > limit:
            retry_after = max(1, math.ceil(int(ttl_ms) / 1000))
            raise RateLimited(limit, window_seconds, retry_after)


def limiter_for(request: Request, redis: Any) -> RateLimiter:
    """The app's limiter for ``redis``, built once: building one per request re-hashed the
    script every time. Kept on the app's state, so it lives and dies with the app."""
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
    if limiter is None or limiter.redis is not redis:
        limiter = state.rate_limiter = RateLimiter(redis)
    return limiter


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limit(
    bucket: str, setting: str, *, window_seconds: int = 60
) -> Callable[[Request, Any], Awaitable[None]]:
    """A dependency limiting each client to ``settings.<setting>`` requests per window.

    The limit is read at request time, so settings given to the app decide it.
    """
    if setting not in Settings.model_fields:
        raise ValueError(f"no setting named {setting!r}")

    async def limited(request: Request, resources: ResourcesDep) -> None:
        limit = getattr(resources.settings, setting)
        await limiter_for(request, resources.redis).hit(
            bucket, client_address(request), limit, window_seconds
        )

    limited.__name__ = f"rate_limit_{bucket}"
    return limited
