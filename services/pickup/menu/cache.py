"""The menu cache in Redis: one hash holding the public menu JSON and the products behind it.

``body`` is the exact bytes ``GET /api/menu`` answers with (so a hit is never re-serialised),
``products`` the full products (with stock numbers the public menu leaves out) for the cart's
availability checks, and ``version`` a random stamp of this stored copy: a process that has
already parsed the copy with that stamp reads only the stamp (a few bytes) instead of the whole
products JSON. All are written together and expire together.

Stock changes call :func:`invalidate_menu`. A rebuild that read DynamoDB before such a change
must not put its stale copy back afterwards, so invalidation also bumps a generation counter
and a rebuild stores its copy only if the generation is still the one it started from.

Each :class:`~pickup.runtime.Resources` also holds a :class:`LocalCopy`: the last menu
document it served and until when it may serve it again without asking Redis
(``menu_revalidate_ms``). :func:`invalidate_menu` drops every such copy in the process before
and after its round trip, so a process never serves a menu older than its own change; other
processes see the change once their interval has run out.

The cache is an optimisation: every function here logs a Redis failure and carries on, so an
outage makes the menu slower, never unavailable.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from pickup.observability.metrics import CACHE_REQUESTS

logger = logging.getLogger("pickup.menu.cache")

_MENU_HIT = CACHE_REQUESTS.labels("menu", "hit")
_MENU_MISS = CACHE_REQUESTS.labels("menu", "miss")
_PRODUCTS_HIT = CACHE_REQUESTS.labels("menu_products", "hit")
_PRODUCTS_MISS = CACHE_REQUESTS.labels("menu_products", "miss")

MENU_KEY = "menu:v1"
GENERATION_KEY = "menu:v1:generation"

# Stores the snapshot only if no invalidation happened since the rebuild read the generation.
_STORE = """
local generation = redis.call('GET', KEYS[2]) or '0'
if generation ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'etag', ARGV[3], 'products', ARGV[4],
  'version', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def etag_for(body: bytes) -> str:
    """A strong entity tag: a digest of the exact bytes served."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    etag: str


class LocalCopy:
    """One :class:`~pickup.runtime.Resources`' copy of the menu document it served last.

    ``fresh_until`` (on ``clock``, ``time.monotonic`` unless a test sets another) is how long the
    copy is served without asking Redis;
    ``epoch`` counts local invalidations, so a read that was in flight across one can tell
    and does not keep what it read as fresh. Never shared between apps: every Resources
    builds its own.
    """

    __slots__ = ("__weakref__", "clock", "document", "epoch", "fresh_until")

    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.monotonic
        self.document: CachedBody | None = None
        self.fresh_until = 0.0
        self.epoch = 0
        _copies.add(self)

    def fresh(self, now: float) -> CachedBody | None:
        """The document when it may be served without asking Redis; counts a menu hit."""
        document = self.document
        if document is None or now >= self.fresh_until:
            return None
        _MENU_HIT.inc()
        return document

    def keep(self, document: CachedBody, *, epoch: int, fresh_until: float | None) -> None:
        """Hold ``document``, served without asking Redis until ``fresh_until`` (``None``: ask
        on the next request) unless this copy was invalidated since ``epoch`` was read."""
        self.document = document
        self.fresh_until = 0.0 if fresh_until is None or epoch != self.epoch else fresh_until

    def drop(self) -> None:
        self.document = None
        self.fresh_until = 0.0
        self.epoch += 1


# Every LocalCopy of the process (one per Resources): an invalidation made through any client
# drops them all, so no app of this process serves a menu older than the process's own change.
_copies: weakref.WeakSet[LocalCopy] = weakref.WeakSet()


def drop_local_copies() -> None:
    """Forget every menu document this process holds (see :func:`invalidate_menu`)."""
    for copy in list(_copies):
        copy.drop()


async def read_body(redis: Any, *, count: bool = True) -> CachedBody | None:
    """The cached menu response, or ``None`` on a miss or when Redis cannot be reached.

    ``count=False`` after a :func:`read_etag` that already counted this request."""
    try:
        body, etag = await redis.hmget(MENU_KEY, ["body", "etag"])
    except RedisError as error:
        _outage("menu.cache_read_failed", error)
        return None
    if body is None or etag is None:
        if count:
            _MENU_MISS.inc()
        return None
    if count:
        _MENU_HIT.inc()
    return CachedBody(_bytes(body), _text(etag))


async def read_etag(redis: Any) -> str | None:
    """The cached menu's ETag alone (a few bytes: whoever holds the body it names needs no
    more), or ``None`` on a miss or when Redis cannot be reached. Counts the hit or miss."""
    try:
        etag = await redis.hget(MENU_KEY, "etag")
    except RedisError as error:
        _outage("menu.cache_read_failed", error)
        return None
    (_MENU_MISS if etag is None else _MENU_HIT).inc()
    return None if etag is None else _text(etag)


async def read_products(redis: Any) -> str | bytes | None:
    """The cached products JSON, or ``None`` on a miss or when Redis cannot be reached."""
    try:
        products = await redis.hget(MENU_KEY, "products")
    except RedisError as error:
        _outage("menu.cache_read_failed", error)
        return None
    (_PRODUCTS_MISS if products is None else _PRODUCTS_HIT).inc()
    return products


async def read_products_version(redis: Any) -> str | None:
    """The stamp of the cached copy (``None`` on a miss, an outage or a copy without one)."""
    try:
        version = await redis.hget(MENU_KEY, "version")
    except RedisError as error:
        _outage("menu.cache_read_failed", error)
        return None
    (_PRODUCTS_MISS if version is None else _PRODUCTS_HIT).inc()
    return None if version is None else _text(version)


async def read_versioned_products(redis: Any) -> tuple[str | None, str | bytes | None]:
    """The cached copy's stamp and products JSON, read together (``None`` where missing).

    Follows a :func:`read_products_version` that already counted the hit or miss."""
    try:
        version, products = await redis.hmget(MENU_KEY, ["version", "products"])
    except RedisError as error:
        _outage("menu.cache_read_failed", error)
        return None, None
    return (None if version is None else _text(version)), products


async def generation(redis: Any) -> str | None:
    """The current generation, read before a rebuild; ``None`` when Redis cannot be reached."""
    try:
        value = await redis.get(GENERATION_KEY)
    except RedisError as error:
        _outage("menu.cache_read_failed", error)
        return None
    return "0" if value is None else _text(value)


async def store(
    redis: Any, started_at: str, body: bytes, etag: str, products_json: str, ttl_seconds: int
) -> bool:
    """Cache a rebuilt menu unless it was invalidated meanwhile; whether it was stored."""
    try:
        stored = await redis.eval(
            _STORE,
            2,
            MENU_KEY,
            GENERATION_KEY,
            started_at,
            body,
            etag,
            products_json,
            ttl_seconds,
            secrets.token_hex(16),
        )
    except RedisError as error:
        _outage("menu.cache_write_failed", error)
        return False
    return bool(stored)


async def invalidate_menu(redis: Any) -> None:
    """Drop the cached menu after a stock or catalogue change. Never raises.

    One round trip; a rebuild already in flight will not store its (older) copy. This
    process's own copies are dropped before the round trip and again after it, so a read that
    saw the old ETag while the invalidation was in flight is not kept as fresh either.
    """
    drop_local_copies()
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(GENERATION_KEY)
            pipe.delete(MENU_KEY)
            await pipe.execute()
    except RedisError as error:
        # The copy expires within menu_cache_ttl_seconds; the reservation is the hard check.
        _outage("menu.cache_invalidate_failed", error)
    finally:
        drop_local_copies()


def _outage(event: str, error: Exception) -> None:
    logger.warning(event, extra={"error": f"{type(error).__name__}: {error}"})


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
