"""The menu cache: real Redis, the AWS emulator, and the app over httpx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from pickup.adapters.aws import AWSClients
from pickup.adapters.dynamodb import InventoryStore, products_table_definition
from pickup.adapters.redis import create_redis
from pickup.api.app import create_app
from pickup.menu import cache
from pickup.menu.cache import GENERATION_KEY, MENU_KEY, LocalCopy, invalidate_menu
from pickup.menu.service import cached_products
from pickup.observability.metrics import CACHE_REQUESTS
from pickup.runtime import Resources
from pickup.settings import Settings
from tests.helpers import app_client, product

UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"


@pytest.fixture
async def shop(settings: Settings, aws: AWSClients, redis: Any) -> InventoryStore:
    dynamodb = await aws.client("dynamodb")
    await dynamodb.create_table(**products_table_definition(settings.names.products_table))
    await dynamodb.get_waiter("table_exists").wait(
        TableName=settings.names.products_table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    store = InventoryStore(aws, settings.names.products_table)
    for item in (product("croissant", 40, sort_order=1), product("scone", 12, sort_order=2)):
        await store.put_product(item, replace_inventory=True)
    return store


@pytest.fixture
async def client(settings: Settings, shop: InventoryStore) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as client:
        yield client


def stock(response: httpx.Response, product_id: str) -> dict[str, Any]:
    products = {p["id"]: p for c in response.json()["categories"] for p in c["products"]}
    return products[product_id]["stock"]


async def test_the_first_get_caches_the_exact_bytes_served(
    client: httpx.AsyncClient, redis: Any, settings: Settings
) -> None:
    assert await redis.exists(MENU_KEY) == 0

    response = await client.get("/api/menu")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == (await redis.hget(MENU_KEY, "body")).encode()
    assert 0 < await redis.ttl(MENU_KEY) <= settings.menu_cache_ttl_seconds
    assert [c["name"] for c in response.json()["categories"]] == ["Bakery"]


async def test_the_etag_is_strong_and_stable_and_a_match_answers_304(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/api/menu")
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert (await client.get("/api/menu")).headers["etag"] == etag

    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await client.get("/api/menu", headers={"if-none-match": if_none_match})
        assert response.status_code == 304, if_none_match
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "no-cache"

    changed = await client.get("/api/menu", headers={"if-none-match": '"something-else"'})
    assert changed.status_code == 200
    assert changed.content == first.content


async def test_the_schema_documents_if_none_match_as_a_header_parameter(
    client: httpx.AsyncClient,
) -> None:
    # The route reads the header itself; the schema still names it as FastAPI would.
    schema = (await client.get("/api/openapi.json")).json()
    operation = schema["paths"]["/api/menu"]["get"]
    [parameter] = operation["parameters"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == (
        "if-none-match",
        "header",
        False,
    )
    assert parameter["description"] == parameter["schema"]["description"]
    assert {"200", "304", "503"} <= set(operation["responses"])


async def test_a_stock_change_shows_once_the_menu_is_invalidated(
    client: httpx.AsyncClient, shop: InventoryStore, redis: Any
) -> None:
    before = await client.get("/api/menu")
    await shop.adjust("scone", -9)

    cached = await client.get("/api/menu")
    assert cached.headers["etag"] == before.headers["etag"]  # served from the cache

    await invalidate_menu(redis)
    assert await redis.exists(MENU_KEY) == 0
    after = await client.get("/api/menu", headers={"if-none-match": before.headers["etag"]})

    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert stock(after, "scone") == {"status": "low_stock", "available": 3}
    assert stock(before, "scone") == {"status": "in_stock", "available": None}


async def test_a_rebuild_that_started_before_an_invalidation_does_not_store_its_copy(
    redis: Any,
) -> None:
    started_at = await cache.generation(redis)
    assert started_at is not None
    await invalidate_menu(redis)

    stored = await cache.store(redis, started_at, b"{}", '"stale"', "[]", 60)

    assert stored is False
    assert await redis.exists(MENU_KEY) == 0
    fresh = await cache.generation(redis)
    assert fresh is not None
    assert await cache.store(redis, fresh, b"{}", '"fresh"', "[]", 60) is True


async def test_one_product_and_the_carts_products_come_from_the_cached_menu(
    client: httpx.AsyncClient, shop: InventoryStore, settings: Settings
) -> None:
    await client.get("/api/menu")
    await shop.adjust("croissant", -38)

    response = await client.get("/api/menu/croissant")
    assert response.status_code == 200
    assert response.json()["stock"] == {"status": "in_stock", "available": None}

    async with Resources.open(settings) as resources:
        products = await cached_products(resources)
    assert products is not None
    assert set(products) == {"croissant", "scone"}
    assert products["croissant"].available == 40
    assert products["scone"].price_cents == 300


async def test_a_product_missing_from_the_cache_is_read_from_dynamodb(
    client: httpx.AsyncClient, shop: InventoryStore
) -> None:
    await client.get("/api/menu")
    await shop.put_product(product("bagel", 7))

    assert (await client.get("/api/menu/bagel")).json()["stock"]["status"] == "in_stock"
    assert (await client.get("/api/menu/no-such-bagel")).status_code == 404


async def test_the_menu_is_served_from_dynamodb_while_redis_is_unreachable(
    make_settings: Callable[..., Settings], shop: InventoryStore, settings: Settings
) -> None:
    down = make_settings(resource_prefix=settings.resource_prefix, redis_url=UNREACHABLE_REDIS)
    async with app_client(down) as client:
        response = await client.get("/api/menu")
        assert response.status_code == 200
        assert {p["id"] for c in response.json()["categories"] for p in c["products"]} == {
            "croissant",
            "scone",
        }
        etag = response.headers["etag"]
        again = await client.get("/api/menu", headers={"if-none-match": etag})
        assert again.status_code == 304
        assert (await client.get("/api/menu/scone")).status_code == 200


async def test_invalidating_never_raises_when_redis_is_unreachable(
    make_settings: Callable[..., Settings],
) -> None:
    down = create_redis(make_settings(redis_url=UNREACHABLE_REDIS))
    try:
        await invalidate_menu(down)
        assert await cache.read_body(down) is None
        assert await cache.generation(down) is None
    finally:
        await down.aclose()


async def test_an_unreadable_cached_copy_is_ignored(
    client: httpx.AsyncClient, redis: Any, settings: Settings
) -> None:
    await client.get("/api/menu")
    await redis.hset(MENU_KEY, "products", json.dumps([{"id": "NOT A PRODUCT"}]))
    async with Resources.open(settings) as resources:
        assert await cached_products(resources) is None
    assert (await client.get("/api/menu/scone")).status_code == 200


# --- The process's own copy (menu_revalidate_ms) ------------------------------------------------


class Commands:
    """Every command one Redis client sends, recorded on the client itself (so another
    test's traffic on the same server never counts)."""

    def __init__(self, redis: Any) -> None:
        self.sent: list[str] = []
        send = redis.execute_command

        async def execute_command(*args: Any, **options: Any) -> Any:
            self.sent.append(str(args[0]).upper())
            return await send(*args, **options)

        redis.execute_command = execute_command


@asynccontextmanager
async def app_with_resources(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Resources, Commands]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        resources: Resources = app.state.resources
        commands = Commands(resources.redis)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pickup.test") as client:
            yield client, resources, commands


async def invalidate_elsewhere(redis: Any) -> None:
    """What another process's invalidate_menu does to Redis (this process is not told)."""
    await redis.incr(GENERATION_KEY)
    await redis.delete(MENU_KEY)


def menu_hits() -> float:
    return CACHE_REQUESTS.labels("menu", "hit")._value.get()


class Clock:
    """A LocalCopy clock the test moves by hand: the interval never depends on how fast the
    machine answers."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_within_the_interval_a_read_asks_redis_nothing_and_after_it_revalidates(
    make_settings: Callable[..., Settings], settings: Settings, shop: InventoryStore
) -> None:
    timed = make_settings(resource_prefix=settings.resource_prefix, menu_revalidate_ms=300)
    async with app_with_resources(timed) as (client, resources, commands):
        clock = resources.menu_copy.clock = Clock()
        first = await client.get("/api/menu")
        assert first.status_code == 200
        assert commands.sent  # the first read went to Redis (a miss, then the rebuild)

        commands.sent.clear()
        hits = menu_hits()
        clock.now += 0.2
        again = await client.get("/api/menu", headers={"if-none-match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.headers["etag"] == first.headers["etag"]
        assert (await client.get("/api/menu")).content == first.content
        assert commands.sent == []
        assert menu_hits() == hits + 2  # a read served from the process's copy is a hit

        clock.now += 0.2  # past the interval
        assert (await client.get("/api/menu")).content == first.content
        assert commands.sent == ["HGET"]  # the ETag alone, then no more for the interval
        clock.now += 0.2
        assert (await client.get("/api/menu")).content == first.content
        assert commands.sent == ["HGET"]


async def test_another_processes_change_shows_after_the_interval(
    make_settings: Callable[..., Settings],
    settings: Settings,
    shop: InventoryStore,
    redis: Any,
) -> None:
    timed = make_settings(resource_prefix=settings.resource_prefix, menu_revalidate_ms=400)
    async with app_with_resources(timed) as (client, resources, _commands):
        clock = resources.menu_copy.clock = Clock()
        before = await client.get("/api/menu")
        await shop.adjust("scone", -9)
        await invalidate_elsewhere(redis)

        clock.now += 0.2
        stale = await client.get("/api/menu")
        assert stale.headers["etag"] == before.headers["etag"]  # bounded staleness

        clock.now += 0.3  # past the interval
        after = await client.get("/api/menu", headers={"if-none-match": before.headers["etag"]})
        assert after.status_code == 200
        assert stock(after, "scone") == {"status": "low_stock", "available": 3}


async def test_with_0_every_read_asks_redis(
    make_settings: Callable[..., Settings],
    settings: Settings,
    shop: InventoryStore,
    redis: Any,
) -> None:
    every = make_settings(resource_prefix=settings.resource_prefix, menu_revalidate_ms=0)
    async with app_with_resources(every) as (client, _resources, commands):
        before = await client.get("/api/menu")
        commands.sent.clear()
        assert (await client.get("/api/menu")).content == before.content
        assert commands.sent == ["HGET"]

        await shop.adjust("scone", -9)
        await invalidate_elsewhere(redis)
        after = await client.get("/api/menu")
        assert stock(after, "scone") == {"status": "low_stock", "available": 3}


async def test_this_processes_invalidation_shows_at_once(
    make_settings: Callable[..., Settings],
    settings: Settings,
    shop: InventoryStore,
    redis: Any,
) -> None:
    timed = make_settings(resource_prefix=settings.resource_prefix, menu_revalidate_ms=10_000)
    async with app_with_resources(timed) as (client, resources, _commands):
        before = await client.get("/api/menu")
        await shop.adjust("scone", -9)

        await invalidate_menu(resources.redis)  # what checkout and the staff routes call
        after = await client.get("/api/menu")
        assert after.headers["etag"] != before.headers["etag"]
        assert stock(after, "scone") == {"status": "low_stock", "available": 3}

        await shop.adjust("scone", -1)
        await invalidate_menu(redis)  # through any client of this process, e.g. a consumer's
        latest = await client.get("/api/menu")
        assert stock(latest, "scone") == {"status": "low_stock", "available": 2}


async def test_two_apps_never_share_a_copy(
    make_settings: Callable[..., Settings],
    settings: Settings,
    shop: InventoryStore,
    redis: Any,
) -> None:
    timed = make_settings(resource_prefix=settings.resource_prefix, menu_revalidate_ms=10_000)
    async with (
        app_with_resources(timed) as (first, first_resources, _),
        app_with_resources(timed) as (second, second_resources, second_commands),
    ):
        assert first_resources.menu_copy is not second_resources.menu_copy
        held = await first.get("/api/menu")
        # Another process stores a different copy; the second app has none of its own yet.
        await redis.hset(MENU_KEY, mapping={"body": b'{"categories":[]}', "etag": '"other"'})

        assert (await first.get("/api/menu")).content == held.content
        assert second_resources.menu_copy.document is None
        fetched = await second.get("/api/menu")
        assert fetched.headers["etag"] == '"other"'
        assert fetched.json() == {"categories": []}
        assert second_commands.sent == ["HMGET"]


def test_a_read_in_flight_across_a_local_invalidation_is_not_kept_fresh() -> None:
    copy = LocalCopy()
    document = cache.CachedBody(b"{}", '"old"')
    epoch = copy.epoch  # a read starts ...
    cache.drop_local_copies()  # ... this process invalidates meanwhile ...
    copy.keep(document, epoch=epoch, fresh_until=float("inf"))  # ... the read ends

    assert copy.fresh(0.0) is None
    assert copy.document is document  # still compared by ETag on the next read

    copy.keep(document, epoch=copy.epoch, fresh_until=float("inf"))
    assert copy.fresh(0.0) is document
