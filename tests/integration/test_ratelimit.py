"""RateLimiter against a real Redis server: exact under concurrency, windows expire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pickup.adapters.carts import CartStore, OverRateLimit, new_cart_id
from pickup.adapters.redis import create_redis
from pickup.api.ratelimit import (
    PendingHit,
    RateLimited,
    RateLimiter,
    counted_in_route,
    rate_limit,
)
from pickup.core.errors import ServiceUnavailable
from pickup.settings import Settings

# The limiter needs no PostgreSQL: naming a database here keeps the suite's migrated session
# database (and its start-up cost) out of these tests.
NO_DATABASE = "postgresql://unused@127.0.0.1:1/unused"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(database_url=NO_DATABASE)


async def outcome(limiter: RateLimiter, client: str, limit: int) -> RateLimited | None:
    try:
        await limiter.hit("cart", client, limit)
    except RateLimited as refused:
        return refused
    return None


async def test_exactly_the_limit_passes_among_fifty_concurrent_hits(
    settings: Settings, redis: Any
) -> None:
    # Five clients stand for five API processes sharing the one Redis.
    clients = [create_redis(settings) for _ in range(5)]
    try:
        limiters = [RateLimiter(client) for client in clients]
        results = await asyncio.gather(
            *(outcome(limiters[i % 5], "203.0.113.7", 10) for i in range(50))
        )
    finally:
        for client in clients:
            await client.aclose()

    refused = [result for result in results if result is not None]
    assert len(results) - len(refused) == 10
    assert len(refused) == 40
    assert all(1 <= error.retry_after <= 60 for error in refused)
    assert all(error.status == 429 and error.type == "rate-limited" for error in refused)


async def test_cart_adds_counting_in_their_own_script_share_the_limiters_counter(
    settings: Settings, redis: Any
) -> None:
    """The cart add counts its hit inside the cart's script: the same counter as the
    limiter's own script (other cart writes), exact under concurrency, the same refusal."""
    clients = [create_redis(settings) for _ in range(5)]
    cart = new_cart_id()

    async def cart_add(i: int) -> RateLimited | None:
        hit = PendingHit(RateLimiter(clients[i % 5]), "cart", "203.0.113.8", 10, 60)
        store = CartStore(clients[i % 5], ttl_seconds=60, max_lines=5, max_quantity=100)
        try:
            await store.add_capped(cart, "croissant", 1, cap=100, rate=hit.claim())
        except OverRateLimit as over:
            return hit.refusal(over.ttl_ms)
        assert hit.claim() is None  # counted: never counted again
        await hit.count()
        return None

    try:
        limiters = [RateLimiter(client) for client in clients]
        results = await asyncio.gather(
            *(
                cart_add(i) if i % 2 else outcome(limiters[i % 5], "203.0.113.8", 10)
                for i in range(50)
            )
        )
    finally:
        for client in clients:
            await client.aclose()

    refused = [result for result in results if result is not None]
    assert len(refused) == 40
    assert all(1 <= error.retry_after <= 60 for error in refused)
    assert all(
        (error.status, error.limit, error.window_seconds) == (429, 10, 60) for error in refused
    )
    added = sum(1 for i, result in enumerate(results) if i % 2 and result is None)
    assert int(await redis.hget(f"cart:{cart}", "croissant") or 0) == added
    assert int(await redis.get("ratelimit:cart:203.0.113.8")) == 50


async def test_a_pending_hit_counts_once(redis: Any) -> None:
    hit = PendingHit(RateLimiter(redis), "cart", "203.0.113.6", 1, 60)
    await hit.count()
    await hit.count()
    assert hit.claim() is None
    assert await redis.get("ratelimit:cart:203.0.113.6") == "1"
    with pytest.raises(ValueError, match="limit"):
        PendingHit(RateLimiter(redis), "cart", "203.0.113.6", 0, 60)


async def test_clients_and_buckets_are_counted_apart(redis: Any) -> None:
    limiter = RateLimiter(redis)
    await limiter.hit("cart", "203.0.113.1", 1)
    await limiter.hit("cart", "203.0.113.2", 1)
    await limiter.hit("checkout", "203.0.113.1", 1)
    with pytest.raises(RateLimited):
        await limiter.hit("cart", "203.0.113.1", 1)


async def test_a_window_ends_and_refused_hits_do_not_extend_it(redis: Any) -> None:
    limiter = RateLimiter(redis)
    await limiter.hit("cart", "203.0.113.9", 2, window_seconds=1)
    await limiter.hit("cart", "203.0.113.9", 2, window_seconds=1)
    for _ in range(5):
        with pytest.raises(RateLimited) as refused:
            await limiter.hit("cart", "203.0.113.9", 2, window_seconds=1)
        assert refused.value.retry_after == 1

    await asyncio.sleep(1.1)

    await limiter.hit("cart", "203.0.113.9", 2, window_seconds=1)


async def test_every_counter_expires(redis: Any) -> None:
    await RateLimiter(redis).hit("cart", "203.0.113.5", 3, window_seconds=60)
    keys = [key async for key in redis.scan_iter("ratelimit:*")]
    assert keys == ["ratelimit:cart:203.0.113.5"]
    assert 0 < await redis.ttl(keys[0]) <= 60


async def test_an_unreachable_redis_refuses_writes_with_503(
    make_settings: Callable[..., Settings],
) -> None:
    down = create_redis(make_settings(database_url=NO_DATABASE, redis_url="redis://127.0.0.1:9/0"))
    try:
        with pytest.raises(ServiceUnavailable) as error:
            await RateLimiter(down).hit("cart", "203.0.113.1", 5)
    finally:
        await down.aclose()
    assert "rate limiter is unreachable" in error.value.detail


async def test_limits_must_be_positive_and_settings_must_exist(redis: Any) -> None:
    with pytest.raises(ValueError, match="limit"):
        await RateLimiter(redis).hit("cart", "203.0.113.1", 0)
    with pytest.raises(ValueError, match="no setting named"):
        rate_limit("cart", "rate_limit_cart_per_hour")
    with pytest.raises(ValueError, match="no setting named"):
        counted_in_route("cart", "rate_limit_cart_per_hour")
    with pytest.raises(ValueError, match="window_seconds"):
        counted_in_route("cart", "rate_limit_cart_per_minute", window_seconds=0)


async def test_a_pending_hit_checked_by_its_route_skips_the_check_but_counts_alike(
    redis: Any,
) -> None:
    hit = PendingHit(RateLimiter(redis), "cart", "203.0.113.7", 1, 60, checked=True)
    assert hit.claim() == ("ratelimit:cart:203.0.113.7", 1, 60_000)
    assert hit.claim() is None
    with pytest.raises(ValueError, match="window_seconds"):
        PendingHit(RateLimiter(redis), "cart", "203.0.113.7", 1, 0)
