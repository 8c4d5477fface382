"""Carts in Redis: one hash per cart (product id -> quantity) that expires when left alone.

Every write is one Lua script, so checking the bounds, writing and refreshing the expiry
happen in one step: two tabs adding at once can neither lose an update nor together go past
a bound. The checked add (:meth:`CartStore.add_capped`) also takes the caller's stock cap, a
guard on the data that cap came from, and the request's rate-limit hit, so a cart add is one
round trip; the stock is only the caller's number, the reservation at checkout is the hard
check.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from string import Template
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pickup.adapters.redis import hit_lua
from pickup.core.errors import Conflict, InvalidInput, ServiceUnavailable
from pickup.core.inventory import require_product_id

CART_ID_PATTERN = r"^[A-Za-z0-9_-]{22,64}$"
_CART_ID = re.compile(CART_ID_PATTERN)
UNREACHABLE = "The cart service is unreachable; please try again in a moment."

# Results: {quantity, lines} on success; {-1, lines} when a new line would not fit;
# {-2, quantity in cart} when the line would exceed the per-line limit.
_ADD = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = current + tonumber(ARGV[2])
if wanted > tonumber(ARGV[4]) then
  return {-2, current}
end
local lines = redis.call('HLEN', KEYS[1])
if current == 0 and lines >= tonumber(ARGV[3]) then
  return {-1, lines}
end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {wanted, redis.call('HLEN', KEYS[1])}
"""

# As _ADD, with the line's stock cap (ARGV[3]) checked first and the whole cart returned, so a
# checked add is one round trip: {-3, quantity in cart} when the line would pass the cap.
# Two optional checks come before it, each with a key after KEYS[1] when used:
# - a rate-limit hit (ARGV[6] the limit, ARGV[7] the window in ms; '' when not counted here),
#   counted first, exactly as the rate limiter's own script counts it: {-5, ms until the window
#   ends} when the client is over the limit, and nothing else is done;
# - a guard (field ARGV[4] of its hash must equal ARGV[5]; '' when none): {-4, 0} when it does
#   not, because the cap was computed from data that has changed since; nothing written.
# The store's own bounds are written into the script ($max_quantity, $max_lines, $ttl_seconds):
# on the hot path every argument sent costs the client encoding and the server parsing.
_ADD_CAPPED = Template(
    """
local next_key = 2
local guard_key = nil
if ARGV[4] ~= '' then
  guard_key = KEYS[next_key]
  next_key = next_key + 1
end
if ARGV[6] ~= '' then
"""
    + hit_lua("KEYS[next_key]", "ARGV[7]")
    + """
  if hits > tonumber(ARGV[6]) then
    return {-5, ttl}
  end
end
if guard_key and redis.call('HGET', guard_key, ARGV[4]) ~= ARGV[5] then
  return {-4, 0}
end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = current + tonumber(ARGV[2])
if wanted > tonumber(ARGV[3]) then
  return {-3, current}
end
if wanted > $max_quantity then
  return {-2, current}
end
if current == 0 and redis.call('HLEN', KEYS[1]) >= $max_lines then
  return {-1, 0}
end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
redis.call('EXPIRE', KEYS[1], $ttl_seconds)
return {wanted, redis.call('HGETALL', KEYS[1])}
"""
)

_SET = """
local wanted = tonumber(ARGV[2])
if wanted == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[5])
  end
  return {0, redis.call('HLEN', KEYS[1])}
end
if wanted > tonumber(ARGV[4]) then
  return {-2, tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')}
end
local lines = redis.call('HLEN', KEYS[1])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and lines >= tonumber(ARGV[3]) then
  return {-1, lines}
end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {wanted, redis.call('HLEN', KEYS[1])}
"""

_REMOVE = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return removed
"""


class CartFull(Conflict):
    type = "cart-full"
    title = "The cart is full"

    def __init__(self, max_lines: int) -> None:
        super().__init__(f"A cart holds at most {max_lines} different items.")
        self.max_lines = max_lines

    def extensions(self) -> dict[str, Any]:
        return {"max_lines": self.max_lines}


class QuantityLimit(Conflict):
    type = "cart-quantity-limit"
    title = "Too many of one item"

    def __init__(self, product_id: str, max_quantity: int, in_cart: int) -> None:
        super().__init__(
            f"At most {max_quantity} of {product_id} per order; the cart already has {in_cart}."
        )
        self.product_id = product_id
        self.max_quantity = max_quantity
        self.in_cart = in_cart

    def extensions(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "max_quantity": self.max_quantity,
            "in_cart": self.in_cart,
        }


class LineCapExceeded(Exception):
    """A checked add would take the line above the cap it was given; nothing was written."""

    def __init__(self, in_cart: int) -> None:
        super().__init__(f"the line holds {in_cart}")
        self.in_cart = in_cart


class GuardChanged(Exception):
    """A guarded add found its guard changed: the cap may be stale; nothing was written."""


class OverRateLimit(Exception):
    """An add that counted a rate-limit hit found the client over the limit; nothing else
    was done. ``ttl_ms``: milliseconds until the window ends."""

    def __init__(self, ttl_ms: int) -> None:
        super().__init__(f"over the limit for {ttl_ms} ms")
        self.ttl_ms = ttl_ms


def new_cart_id() -> str:
    """An unguessable cart id (32 url-safe characters): it is the only key to the cart."""
    return secrets.token_urlsafe(24)


def is_cart_id(value: object) -> bool:
    return isinstance(value, str) and _CART_ID.fullmatch(value) is not None


class CartStore:
    def __init__(
        self,
        redis: Any,
        *,
        ttl_seconds: int,
        max_lines: int,
        max_quantity: int,
        key_prefix: str = "cart:",
    ) -> None:
        for name, value in (
            ("ttl_seconds", ttl_seconds),
            ("max_lines", max_lines),
            ("max_quantity", max_quantity),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self._redis = redis
        self.ttl_seconds = ttl_seconds
        self.max_lines = max_lines
        self.max_quantity = max_quantity
        self.key_prefix = key_prefix
        self._add = redis.register_script(_ADD)
        self._add_capped = redis.register_script(
            _ADD_CAPPED.substitute(
                max_quantity=max_quantity, max_lines=max_lines, ttl_seconds=ttl_seconds
            )
        )
        self._set = redis.register_script(_SET)
        self._remove = redis.register_script(_REMOVE)

    def key(self, cart_id: str) -> str:
        if not is_cart_id(cart_id):
            raise InvalidInput(
                "not a cart id: expected 22-64 letters, digits, '-' or '_'", field="cart_id"
            )
        return self.key_prefix + cart_id

    async def add(self, cart_id: str, product_id: str, quantity: int = 1) -> int:
        """Add ``quantity`` of a product; returns how many of it the cart now holds."""
        key = self.key(cart_id)
        require_product_id(product_id)
        if _not_int(quantity) or quantity < 1:
            raise InvalidInput(f"quantity must be at least 1, got {quantity!r}", "quantity")
        return await self._write(self._add, key, product_id, quantity)

    async def add_capped(
        self,
        cart_id: str,
        product_id: str,
        quantity: int,
        cap: int,
        *,
        guard: tuple[str, str, str] | None = None,
        rate: tuple[str, int, int] | None = None,
    ) -> dict[str, int]:
        """Add ``quantity`` unless the line would then hold more than ``cap`` (the stock the
        caller checked; :class:`LineCapExceeded` then); returns the cart's lines after it.

        ``guard`` is ``(hash key, field, value)`` the cap was computed under: if the field
        holds anything else when the script runs, :class:`GuardChanged` and nothing written.
        ``rate`` is ``(counter key, limit, window in ms)`` of a rate-limit hit to count first,
        as :class:`pickup.api.ratelimit.RateLimiter` counts it (the same key is the same
        counter): past the limit, :class:`OverRateLimit` and nothing else done.
        """
        key = self.key(cart_id)
        require_product_id(product_id)
        if _not_int(quantity) or quantity < 1:
            raise InvalidInput(f"quantity must be at least 1, got {quantity!r}", "quantity")
        keys = [key]
        args: list[str | int] = [product_id, quantity, cap]
        if guard is not None:
            keys.append(guard[0])
            args += [guard[1], guard[2]]
        else:
            args += ["", ""]
        if rate is not None:
            keys.append(rate[0])
            args += [rate[1], rate[2]]
        else:
            args += ["", ""]
        try:  # _translate_errors, written out: a generator-based context manager per add
            result, detail = await self._add_capped(keys=keys, args=args)
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise ServiceUnavailable(UNREACHABLE) from error
        if result == -5:
            raise OverRateLimit(int(detail))
        if result == -4:
            raise GuardChanged
        if result == -3:
            raise LineCapExceeded(int(detail))
        if result == -2:
            raise QuantityLimit(product_id, self.max_quantity, int(detail))
        if result == -1:
            raise CartFull(self.max_lines)
        flat = iter(detail)
        return {_text(product): int(count) for product, count in zip(flat, flat, strict=True)}

    async def set_quantity(self, cart_id: str, product_id: str, quantity: int) -> int:
        """Make the line exactly ``quantity`` (0 removes it); returns the new quantity."""
        key = self.key(cart_id)
        require_product_id(product_id)
        if _not_int(quantity) or quantity < 0:
            raise InvalidInput(f"quantity must be 0 or more, got {quantity!r}", "quantity")
        return await self._write(self._set, key, product_id, quantity)

    async def remove(self, cart_id: str, product_id: str) -> bool:
        """Remove a line; whether it was in the cart."""
        key = self.key(cart_id)
        require_product_id(product_id)
        with self._translate_errors():
            removed = await self._remove(keys=[key], args=[product_id, self.ttl_seconds])
        return bool(removed)

    async def get(self, cart_id: str) -> dict[str, int]:
        """The cart's lines, product id -> quantity (empty when it expired or never existed)."""
        key = self.key(cart_id)
        with self._translate_errors():
            lines = await self._redis.hgetall(key)
        return {_text(product): int(quantity) for product, quantity in lines.items()}

    async def clear(self, cart_id: str) -> None:
        key = self.key(cart_id)
        with self._translate_errors():
            await self._redis.delete(key)

    async def _write(self, script: Any, key: str, product_id: str, quantity: int) -> int:
        args = [product_id, quantity, self.max_lines, self.max_quantity, self.ttl_seconds]
        with self._translate_errors():
            result, detail = await script(keys=[key], args=args)
        if result == -1:
            raise CartFull(self.max_lines)
        if result == -2:
            raise QuantityLimit(product_id, self.max_quantity, int(detail))
        return int(result)

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise ServiceUnavailable(UNREACHABLE) from error


def _not_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
