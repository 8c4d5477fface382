"""RateLimiter against a real Redis server: exact under concurrency, windows expire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pickup.adapters.redis import create_redis
from pickup.api.ratelimit import RateLimited, RateLimiter, rate_limit
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
