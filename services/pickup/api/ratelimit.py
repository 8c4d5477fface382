"""Per-client rate limits in Redis, shared by every API process.

Fixed windows that start at a client's first request: one Lua script increments the counter
and, on the first hit, sets the window's expiry, so concurrent requests (in one process or
many) can never together pass more than ``limit``. A refused request still counts but never
extends the window, so hammering does not lock a client out for longer. The trade-off against
a sliding window: a client can fit up to ``2 * limit`` requests around a window boundary,
which is fine for abuse protection and costs one key and one round trip per request.

Clients are told apart by IP address (``request.client.host``); behind a proxy uvicorn's
``--proxy-headers`` / ``--forwarded-allow-ips`` put the real client address there.

Most routes count a request with :func:`rate_limit`, a dependency (its own round trip). A route
whose work is itself one Redis script can count the hit inside that script instead
(:func:`counted_in_route`, the cart add): the same key, window and limit, checked first in
the script, so the request costs one round trip. Whatever that route refuses before its
script runs (a body that fails validation, an unknown product) is counted on its own, and
answered 429 instead when the client is over the limit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from redis.exceptions import RedisError

from pickup.adapters.redis import hit_lua
from pickup.api.deps import ResourcesDep, resources_of
from pickup.core.errors import PickupError, ServiceUnavailable
from pickup.settings import Settings

logger = logging.getLogger("pickup.api.ratelimit")

UNREACHABLE = "The rate limiter is unreachable, so writes are paused; please try again shortly."


# Returns {hits in this window, milliseconds until the window ends}.
_HIT = hit_lua("KEYS[1]", "ARGV[1]") + "return {hits, ttl}\n"


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

    @classmethod
    def after(cls, limit: int, window_seconds: int, ttl_ms: int) -> RateLimited:
        """The refusal when the window ends in ``ttl_ms`` milliseconds."""
        return cls(limit, window_seconds, max(1, math.ceil(int(ttl_ms) / 1000)))


def _check_positive(**values: object) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


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
        _check_positive(limit=limit, window_seconds=window_seconds)
        key = self.key(bucket, client)
        try:
            hits, ttl_ms = await self._script(keys=[key], args=[window_seconds * 1000])
        except RedisError as error:
            logger.warning("ratelimit.unavailable", extra={"bucket": bucket, "error": str(error)})
            raise ServiceUnavailable(UNREACHABLE) from error
        if int(hits) > limit:
            raise RateLimited.after(limit, window_seconds, ttl_ms)

    def key(self, bucket: str, client: str) -> str:
        return f"{self.key_prefix}{bucket}:{client}"


class PendingHit:
    """One request's hit on a limit, not counted yet. It is counted once: by the script doing
    the request's work (:meth:`claim`, then :meth:`refusal` if that script says the client is
    over the limit), or on its own (:meth:`count`), whichever comes first."""

    __slots__ = ("bucket", "client", "counted", "limit", "limiter", "window_seconds")

    def __init__(
        self,
        limiter: RateLimiter,
        bucket: str,
        client: str,
        limit: int,
        window_seconds: int,
        *,
        checked: bool = False,
    ) -> None:
        """``checked``: the caller has already checked ``limit`` and ``window_seconds``."""
        if not checked:
            _check_positive(limit=limit, window_seconds=window_seconds)
        self.limiter = limiter
        self.bucket = bucket
        self.client = client
        self.limit = limit
        self.window_seconds = window_seconds
        self.counted = False

    def claim(self) -> tuple[str, int, int] | None:
        """``(key, limit, window in ms)`` for a script that counts the hit (see :func:`hit_lua`),
        or ``None`` when it has been counted already. Claiming is counting: if the script then
        fails, the request fails with it and is not counted again."""
        if self.counted:
            return None
        self.counted = True
        return self.limiter.key(self.bucket, self.client), self.limit, self.window_seconds * 1000

    def refusal(self, ttl_ms: int) -> RateLimited:
        """What to raise when the claiming script found the client over the limit."""
        return RateLimited.after(self.limit, self.window_seconds, ttl_ms)

    async def count(self) -> None:
        """Count the hit now, in a round trip of its own, unless it was counted already;
        :class:`RateLimited` past the limit."""
        if self.counted:
            return
        self.counted = True
        await self.limiter.hit(self.bucket, self.client, self.limit, self.window_seconds)


def limiter_for(request: Request, redis: Any) -> RateLimiter:
    """The app's limiter for ``redis``, built once: building one per request re-hashed the
    script every time. Kept on the app's state, so it lives and dies with the app."""
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
    if limiter is None or limiter.redis is not redis:
        limiter = state.rate_limiter = RateLimiter(redis)
    return limiter


def client_address(request: Request) -> str:
    # request.client.host, read from the scope: Request.client builds an Address each time.
    client = request.scope.get("client")
    return client[0] if client else "unknown"


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


_PENDING = "pending_rate_limit"


def counted_in_route(
    bucket: str, setting: str, *, window_seconds: int = 60, base: type[APIRoute] = APIRoute
) -> type[APIRoute]:
    """A route class limiting each client as :func:`rate_limit` does, for a route that counts
    the hit itself, inside the Redis script doing its work (:meth:`PendingHit.claim`), or
    with :meth:`PendingHit.count` before any other work. The route finds its hit with
    :func:`pending_hit`; no Redis is touched before the endpoint runs.

    Every request the route answers counts once: one refused before the endpoint counted it
    (a body that fails validation, or is not JSON at all) is counted then, and the answer is
    429 instead when the client is over the limit, so over the limit 429 comes first whatever
    the body. (413 and 415 come from middleware, before any route or limit.)

    ``base``: the route class to build on (its handler is the one wrapped).
    """
    if setting not in Settings.model_fields:
        raise ValueError(f"no setting named {setting!r}")
    _check_positive(window_seconds=window_seconds)

    class CountedInRoute(base):  # type: ignore[misc,valid-type]
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()

            async def counted_once(request: Request) -> Response:
                resources = resources_of(request)
                hit = PendingHit(
                    limiter_for(request, resources.redis),
                    bucket,
                    client_address(request),
                    # A rate-limit setting is a positive integer (Settings validates it).
                    getattr(resources.settings, setting),
                    window_seconds,
                    checked=True,
                )
                request.scope.setdefault("state", {})[_PENDING] = hit
                try:
                    return await handler(request)
                except Exception:
                    await hit.count()  # a RateLimited (or an outage) replaces the refusal
                    raise

            return counted_once

    CountedInRoute.__name__ = f"CountedInRoute_{bucket}"
    return CountedInRoute


def pending_hit(request: Request) -> PendingHit:
    """The request's hit in a :func:`counted_in_route` route."""
    return request.scope["state"][_PENDING]
