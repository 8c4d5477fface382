"""CartStore against a real Redis server and against fakeredis (the embedded development store)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import fakeredis
import pytest

from pickup.adapters.carts import (
    CartFull,
    CartStore,
    GuardChanged,
    LineCapExceeded,
    OverRateLimit,
    QuantityLimit,
    is_cart_id,
    new_cart_id,
)
from pickup.adapters.redis import create_redis
from pickup.core.errors import Conflict, InvalidInput, ServiceUnavailable
from pickup.settings import Settings

# Carts need no PostgreSQL: naming a database here keeps the suite's migrated session database
# (and its start-up cost) out of these tests.
NO_DATABASE = "postgresql://unused@127.0.0.1:1/unused"

Connect = Callable[[], Any]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(database_url=NO_DATABASE)


@pytest.fixture(params=["redis", "fakeredis"])
async def connect(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> AsyncIterator[Connect]:
    """Makes clients of one emptied server; several clients stand for several API processes."""
    if request.param == "redis":
        settings = make_settings(database_url=NO_DATABASE)
    else:
        settings = make_settings(
            database_url=NO_DATABASE, redis_url=f"memory://carts-{uuid.uuid4().hex}"
        )
    clients: list[Any] = []

    def make() -> Any:
        clients.append(create_redis(settings))
        return clients[-1]

    await make().flushdb()
    yield make
    for client in clients:
        await client.aclose()


def carts(client: Any, **overrides: int) -> CartStore:
    options = {"ttl_seconds": 3600, "max_lines": 5, "max_quantity": 10} | overrides
    return CartStore(client, **options)


async def ttl(store: CartStore, client: Any, cart_id: str) -> int:
    return int(await client.ttl(store.key(cart_id)))


# --- Basic behaviour (real Redis and fakeredis) -----------------------------------------------


async def test_lines_are_added_set_removed_and_cleared(connect: Connect) -> None:
    store = carts(connect())
    cart = new_cart_id()
    assert await store.get(cart) == {}
    assert await store.add(cart, "croissant") == 1
    assert await store.add(cart, "croissant", 2) == 3
    assert await store.add(cart, "scone", 4) == 4
    assert await store.get(cart) == {"croissant": 3, "scone": 4}
    assert await store.set_quantity(cart, "scone", 1) == 1
    assert await store.set_quantity(cart, "bagel", 2) == 2
    assert await store.set_quantity(cart, "croissant", 0) == 0
    assert await store.get(cart) == {"scone": 1, "bagel": 2}
    assert await store.remove(cart, "scone") is True
    assert await store.remove(cart, "scone") is False
    assert await store.get(cart) == {"bagel": 2}
    await store.clear(cart)
    assert await store.get(cart) == {}


async def test_carts_are_kept_apart(connect: Connect) -> None:
    store = carts(connect())
    first, second = new_cart_id(), new_cart_id()
    await store.add(first, "croissant", 2)
    await store.add(second, "scone", 1)
    assert await store.get(first) == {"croissant": 2}
    assert await store.get(second) == {"scone": 1}


async def test_every_write_sets_and_refreshes_the_expiry(connect: Connect) -> None:
    client = connect()
    store = carts(client, ttl_seconds=600)
    cart = new_cart_id()
    await store.add(cart, "croissant")
    assert 590 <= await ttl(store, client, cart) <= 600
    for write in (
        store.add(cart, "croissant"),
        store.set_quantity(cart, "scone", 2),
        store.remove(cart, "croissant"),
    ):
        await client.expire(store.key(cart), 5)
        await write
        assert 590 <= await ttl(store, client, cart) <= 600


async def test_reading_does_not_extend_the_cart(connect: Connect) -> None:
    client = connect()
    store = carts(client, ttl_seconds=600)
    cart = new_cart_id()
    await store.add(cart, "croissant")
    await client.expire(store.key(cart), 5)
    await store.get(cart)
    assert await ttl(store, client, cart) <= 5


async def test_removing_the_last_line_deletes_the_cart(connect: Connect) -> None:
    client = connect()
    store = carts(client)
    cart = new_cart_id()
    await store.add(cart, "croissant")
    await store.set_quantity(cart, "croissant", 0)
    assert await client.exists(store.key(cart)) == 0
    await store.add(cart, "scone")
    await store.remove(cart, "scone")
    assert await client.exists(store.key(cart)) == 0


async def test_a_new_line_beyond_the_line_limit_is_refused_and_nothing_changes(
    connect: Connect,
) -> None:
    client = connect()
    store = carts(client, max_lines=3)
    cart = new_cart_id()
    for product in ("croissant", "scone", "bagel"):
        await store.add(cart, product)
    await client.expire(store.key(cart), 30)
    for write in (store.add(cart, "muffin"), store.set_quantity(cart, "muffin", 1)):
        with pytest.raises(CartFull) as raised:
            await write
        assert raised.value.extensions() == {"max_lines": 3}
        assert isinstance(raised.value, Conflict) and raised.value.status == 409
    assert await store.get(cart) == {"croissant": 1, "scone": 1, "bagel": 1}
    assert await ttl(store, client, cart) <= 30
    assert await store.add(cart, "scone", 2) == 3  # more of an existing line still fits


async def test_a_line_beyond_the_quantity_limit_is_refused_and_nothing_changes(
    connect: Connect,
) -> None:
    store = carts(connect(), max_quantity=5)
    cart = new_cart_id()
    await store.add(cart, "croissant", 3)
    with pytest.raises(QuantityLimit) as raised:
        await store.add(cart, "croissant", 3)
    assert raised.value.extensions() == {
        "product_id": "croissant",
        "max_quantity": 5,
        "in_cart": 3,
    }
    assert raised.value.status == 409 and raised.value.type == "cart-quantity-limit"
    with pytest.raises(QuantityLimit):
        await store.set_quantity(cart, "croissant", 6)
    with pytest.raises(QuantityLimit):
        await store.add(cart, "scone", 6)
    assert await store.get(cart) == {"croissant": 3}
    assert await store.set_quantity(cart, "croissant", 5) == 5


@pytest.mark.parametrize(
    "cart_id", ["", "short", "a" * 21, "a" * 65, "has space" * 4, "semi;colon" * 4, None, 42]
)
async def test_malformed_cart_ids_are_refused(connect: Connect, cart_id: Any) -> None:
    client = connect()
    store = carts(client)
    for call in (
        store.add(cart_id, "croissant"),
        store.set_quantity(cart_id, "croissant", 1),
        store.remove(cart_id, "croissant"),
        store.get(cart_id),
        store.clear(cart_id),
    ):
        with pytest.raises(InvalidInput) as raised:
            await call
        assert raised.value.field == "cart_id"
    assert await client.dbsize() == 0


@pytest.mark.parametrize(
    ("product_id", "quantity"),
    [
        ("Croissant", 1),
        ("a" * 65, 1),
        ("", 1),
        ("croissant", 0),
        ("croissant", -2),
        ("croissant", True),
        ("croissant", 1.5),
        ("croissant", "2"),
    ],
)
async def test_malformed_lines_are_refused_and_nothing_is_written(
    connect: Connect, product_id: Any, quantity: Any
) -> None:
    client = connect()
    store = carts(client)
    with pytest.raises(InvalidInput):
        await store.add(new_cart_id(), product_id, quantity)
    if quantity != 0:  # zero is a valid way to remove a line
        with pytest.raises(InvalidInput):
            await store.set_quantity(new_cart_id(), product_id, quantity)
    assert await client.dbsize() == 0


# --- Concurrency --------------------------------------------------------------------------------


async def test_fifty_concurrent_adds_from_two_clients_lose_no_update(connect: Connect) -> None:
    first, second = carts(connect(), max_quantity=999), carts(connect(), max_quantity=999)
    cart = new_cart_id()
    results = await asyncio.gather(
        *(store.add(cart, "croissant") for store in [first, second] * 25)
    )
    assert sorted(results) == list(range(1, 51))
    assert await first.get(cart) == {"croissant": 50}


async def test_concurrent_adds_stop_exactly_at_the_quantity_limit(connect: Connect) -> None:
    first, second = carts(connect(), max_quantity=30), carts(connect(), max_quantity=30)
    cart = new_cart_id()
    outcomes = await asyncio.gather(
        *(store.add(cart, "croissant") for store in [first, second] * 25),
        return_exceptions=True,
    )
    assert sum(isinstance(outcome, int) for outcome in outcomes) == 30
    assert sum(isinstance(outcome, QuantityLimit) for outcome in outcomes) == 20
    assert await second.get(cart) == {"croissant": 30}


async def test_concurrent_new_lines_stop_exactly_at_the_line_limit(connect: Connect) -> None:
    first, second = carts(connect(), max_lines=10), carts(connect(), max_lines=10)
    cart = new_cart_id()
    outcomes = await asyncio.gather(
        *((first if n % 2 else second).set_quantity(cart, f"item-{n}", 2) for n in range(50)),
        return_exceptions=True,
    )
    assert sum(isinstance(outcome, CartFull) for outcome in outcomes) == 40
    assert len(await first.get(cart)) == 10


# --- Ids, configuration, failures ------------------------------------------------------------


# --- The checked add (one round trip: rate-limit hit, guard, stock cap, write, whole cart) ----


async def test_a_checked_add_returns_the_whole_cart_and_refuses_above_its_cap(
    connect: Connect,
) -> None:
    store = carts(connect())
    cart = new_cart_id()
    assert await store.add_capped(cart, "croissant", 2, cap=3) == {"croissant": 2}
    assert await store.add_capped(cart, "scone", 1, cap=9) == {"croissant": 2, "scone": 1}
    with pytest.raises(LineCapExceeded) as raised:
        await store.add_capped(cart, "croissant", 2, cap=3)
    assert raised.value.in_cart == 2
    with pytest.raises(QuantityLimit):
        await store.add_capped(cart, "scone", 10, cap=100)
    assert await store.get(cart) == {"croissant": 2, "scone": 1}


async def test_a_checked_add_keeps_each_stores_own_bounds(connect: Connect) -> None:
    # The bounds are written into each store's script: two stores, two sets of bounds.
    client = connect()
    small = carts(client, max_lines=2, max_quantity=3, ttl_seconds=60)
    large = carts(client, max_lines=5, max_quantity=10, ttl_seconds=3600)
    cart, other = new_cart_id(), new_cart_id()
    await small.add_capped(cart, "croissant", 1, cap=100)
    await small.add_capped(cart, "scone", 1, cap=100)
    with pytest.raises(CartFull):
        await small.add_capped(cart, "bun", 1, cap=100)
    with pytest.raises(QuantityLimit):
        await small.add_capped(cart, "scone", 3, cap=100)
    assert 0 < await ttl(small, client, cart) <= 60
    for product in ("croissant", "scone", "bun"):
        await large.add_capped(other, product, 4, cap=100)
    assert 60 < await ttl(large, client, other) <= 3600
    assert await small.get(cart) == {"croissant": 1, "scone": 1}


async def test_a_guarded_add_writes_only_while_its_guard_holds(connect: Connect) -> None:
    client = connect()
    store = carts(client)
    cart = new_cart_id()
    await client.hset("menu:v1", "version", "a")
    assert await store.add_capped(cart, "croissant", 1, 5, guard=("menu:v1", "version", "a"))
    await client.hset("menu:v1", "version", "b")
    with pytest.raises(GuardChanged):
        await store.add_capped(cart, "croissant", 1, 5, guard=("menu:v1", "version", "a"))
    await client.delete("menu:v1")
    with pytest.raises(GuardChanged):
        await store.add_capped(cart, "croissant", 1, 5, guard=("menu:v1", "version", "a"))
    assert await store.get(cart) == {"croissant": 1}


async def test_an_add_counting_a_rate_limit_hit_counts_first_and_stops_past_the_limit(
    connect: Connect,
) -> None:
    client = connect()
    store = carts(client)
    cart = new_cart_id()
    rate = ("ratelimit:cart:203.0.113.4", 2, 1000)
    await store.add_capped(cart, "croissant", 1, 5, rate=rate)
    # Counted before the guard and the cap are looked at: a refused add still counts.
    with pytest.raises(GuardChanged):
        await store.add_capped(
            cart, "croissant", 1, 5, guard=("menu:v1", "version", "x"), rate=rate
        )
    assert await client.get("ratelimit:cart:203.0.113.4") == "2"
    assert 0 < await client.pttl("ratelimit:cart:203.0.113.4") <= 1000
    for _ in range(3):
        with pytest.raises(OverRateLimit) as raised:
            await store.add_capped(cart, "scone", 1, 5, rate=rate)
        assert 0 < raised.value.ttl_ms <= 1000
    assert await client.get("ratelimit:cart:203.0.113.4") == "5"
    assert await store.get(cart) == {"croissant": 1}  # nothing written past the limit
    await client.pexpire("ratelimit:cart:203.0.113.4", 1)  # the window ends
    await asyncio.sleep(0.05)
    assert await store.add_capped(cart, "scone", 1, 5, rate=rate) == {"croissant": 1, "scone": 1}
    assert await client.get("ratelimit:cart:203.0.113.4") == "1"


def test_new_cart_ids_are_unguessable_url_safe_and_valid() -> None:
    ids = {new_cart_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_cart_id(cart_id) and len(cart_id) == 32 for cart_id in ids)


@pytest.mark.parametrize(
    "options",
    [{"ttl_seconds": 0}, {"max_lines": -1}, {"max_quantity": True}, {"max_quantity": 2.5}],
)
def test_a_cart_store_refuses_nonsense_limits(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        carts(fakeredis.FakeAsyncRedis(), **options)


async def test_carts_work_with_a_client_that_returns_bytes() -> None:
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=False)
    store = carts(client)
    cart = new_cart_id()
    await store.add(cart, "croissant", 2)
    assert await store.get(cart) == {"croissant": 2}
    await client.aclose()


async def test_an_unreachable_redis_is_reported_as_unavailable(
    make_settings: Callable[..., Settings],
) -> None:
    client = create_redis(
        make_settings(database_url=NO_DATABASE, redis_url="redis://127.0.0.1:9/0")
    )
    store = carts(client)
    try:
        for call in (store.add(new_cart_id(), "croissant"), store.get(new_cart_id())):
            with pytest.raises(ServiceUnavailable, match="cart service is unreachable") as raised:
                await call
            assert raised.value.status == 503
    finally:
        await client.aclose()
