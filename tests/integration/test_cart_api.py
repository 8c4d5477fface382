"""The cart API over HTTP: real Redis for carts and limits, the AWS emulator for products."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from itsdangerous import Signer, URLSafeSerializer

from pickup.adapters.aws import AWSClients
from pickup.adapters.carts import new_cart_id
from pickup.adapters.dynamodb import InventoryStore, products_table_definition
from pickup.cart.identity import COOKIE_NAME, HEADER_NAME, cart_id_from_token, issue_cart_token
from pickup.menu.cache import invalidate_menu
from pickup.settings import Settings
from tests.helpers import app_client, product

PROBLEM = "application/problem+json"
PROBLEMS = "https://pickup.dev/problems/"


PRODUCTS = [
    product("flat-white", 50, price_cents=340),
    product("mocha", 3, price_cents=380),
    product("scone", 40, price_cents=295, max_per_order=4),
    product("cold-brew", 0, price_cents=350),
    product("seasonal-pie", 20, price_cents=450, is_available=False),
]


async def open_shop(settings: Settings, aws: AWSClients) -> InventoryStore:
    """A products table of this test's own, holding PRODUCTS."""
    dynamodb = await aws.client("dynamodb")
    await dynamodb.create_table(**products_table_definition(settings.names.products_table))
    await dynamodb.get_waiter("table_exists").wait(
        TableName=settings.names.products_table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    store = InventoryStore(aws, settings.names.products_table)
    for item in PRODUCTS:
        await store.put_product(item, replace_inventory=True)
    return store


@pytest.fixture
async def shop(settings: Settings, aws: AWSClients, redis: Any) -> InventoryStore:
    return await open_shop(settings, aws)


@pytest.fixture
async def client(settings: Settings, shop: InventoryStore) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as client:
        yield client


async def add(client: httpx.AsyncClient, product_id: str, quantity: int = 1) -> httpx.Response:
    return await client.post("/api/cart/add", json={"product_id": product_id, "quantity": quantity})


async def update(client: httpx.AsyncClient, product_id: str, quantity: int) -> httpx.Response:
    return await client.put(
        "/api/cart/update", json={"product_id": product_id, "quantity": quantity}
    )


def quantities(response: httpx.Response) -> dict[str, int]:
    return {line["product_id"]: line["quantity"] for line in response.json()["lines"]}


async def cart_keys(redis: Any) -> list[str]:
    return [key async for key in redis.scan_iter("cart:*")]


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == PROBLEMS + type_
    assert body["status"] == status
    assert body["detail"]
    return body


# --- Identity ---------------------------------------------------------------------------------


async def test_the_first_add_starts_a_cart_in_a_signed_http_only_same_site_cookie(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await client.get("/api/cart")).headers.get("set-cookie") is None

    response = await add(client, "flat-white", 2)

    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in attributes  # the test server is http://
    token = client.cookies[COOKIE_NAME]
    assert response.headers[HEADER_NAME] == token
    assert cart_id_from_token(token, settings) is not None
    assert quantities(await client.get("/api/cart")) == {"flat-white": 2}


async def test_cookies_are_secure_when_the_shop_is_served_over_https(
    make_settings: Callable[..., Settings], aws: AWSClients, redis: Any
) -> None:
    settings = make_settings(public_url="https://shop.example")
    await open_shop(settings, aws)
    async with app_client(settings) as client:
        response = await add(client, "flat-white")
    assert response.status_code == 200
    assert "; secure" in response.headers["set-cookie"].lower()


async def test_api_clients_keep_their_cart_with_the_token_header(
    client: httpx.AsyncClient,
) -> None:
    token = (await add(client, "scone", 2)).headers[HEADER_NAME]
    client.cookies.clear()

    assert quantities(await client.get("/api/cart")) == {}
    response = await client.post(
        "/api/cart/add", json={"product_id": "mocha"}, headers={HEADER_NAME: token}
    )
    assert response.status_code == 200
    assert response.headers[HEADER_NAME] == token
    assert quantities(response) == {"scone": 2, "mocha": 1}


async def test_a_tampered_token_starts_a_new_cart_and_never_reads_another_one(
    client: httpx.AsyncClient, settings: Settings, redis: Any
) -> None:
    token = (await add(client, "scone", 3)).headers[HEADER_NAME]
    cart_id = cart_id_from_token(token, settings)
    assert cart_id is not None
    client.cookies.clear()
    forged = [
        # A broken signature. Not just the last character: its low bits may be base64
        # padding, so changing it alone can leave the signature intact.
        token[:-6] + ("A" * 6 if token[-6:] != "A" * 6 else "B" * 6),
        Signer("someone-elses-key", salt="cart", digest_method=hashlib.sha256)
        .sign(cart_id)
        .decode(),
        f"{new_cart_id()}.{token.rsplit('.', 1)[1]}",  # another id under this token's signature
        # The earlier token format, under our own key: it reads as no cart.
        URLSafeSerializer(settings.secret_key.get_secret_value(), salt="cart").dumps(cart_id),
        cart_id,  # the bare id, unsigned
    ]
    for bad in forged:
        viewed = await client.get("/api/cart", headers={"cookie": f"{COOKIE_NAME}={bad}"})
        assert quantities(viewed) == {}
        assert quantities(await client.get("/api/cart", headers={HEADER_NAME: bad})) == {}

    response = await client.post(
        "/api/cart/add",
        json={"product_id": "mocha"},
        headers={"cookie": f"{COOKIE_NAME}={forged[0]}"},
    )

    assert quantities(response) == {"mocha": 1}
    new_id = cart_id_from_token(response.headers[HEADER_NAME], settings)
    assert new_id is not None and new_id != cart_id
    original = await client.get("/api/cart", headers={HEADER_NAME: token})
    assert quantities(original) == {"scone": 3}
    assert len(await cart_keys(redis)) == 2


# --- Writes and the view ------------------------------------------------------------------------


async def test_the_cart_view_prices_lines_on_the_server(client: httpx.AsyncClient) -> None:
    await add(client, "flat-white", 2)
    response = await add(client, "mocha", 1)

    body = response.json()
    lines = {line["product_id"]: line for line in body["lines"]}
    assert lines["flat-white"] == {
        "product_id": "flat-white",
        "name": "Flat White",
        "unit_price_cents": 340,
        "quantity": 2,
        "line_total_cents": 680,
        "stock": {"status": "in_stock", "available": None},
        "fulfillable": True,
        "issue": None,
    }
    assert lines["mocha"]["stock"] == {"status": "low_stock", "available": 3}
    assert body["totals"] == {
        "subtotal_cents": 680 + 380,
        "item_count": 3,
        "line_count": 2,
        "currency": "GBP",
    }
    assert body["checkout_ready"] is True
    assert [line["name"] for line in body["lines"]] == ["Flat White", "Mocha"]


async def test_a_price_sent_by_the_client_is_refused_and_a_changed_price_is_shown(
    client: httpx.AsyncClient, shop: InventoryStore, redis: Any
) -> None:
    response = await client.post(
        "/api/cart/add", json={"product_id": "scone", "quantity": 1, "unit_price_cents": 1}
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["field"] == "body.unit_price_cents"
    assert await cart_keys(redis) == []

    await add(client, "scone", 2)
    await shop.put_product(PRODUCTS[2].model_copy(update={"price_cents": 310}))
    await invalidate_menu(redis)

    line = (await client.get("/api/cart")).json()["lines"][0]
    assert (line["unit_price_cents"], line["line_total_cents"]) == (310, 620)


async def test_update_sets_a_quantity_and_zero_removes_the_line(
    client: httpx.AsyncClient,
) -> None:
    await add(client, "flat-white", 1)
    await add(client, "scone", 1)

    response = await client.put(
        "/api/cart/update", json={"product_id": "flat-white", "quantity": 7}
    )
    assert quantities(response) == {"flat-white": 7, "scone": 1}
    response = await update(client, "mocha", 2)
    assert quantities(response) == {"flat-white": 7, "scone": 1, "mocha": 2}
    response = await update(client, "scone", 0)
    assert quantities(response) == {"flat-white": 7, "mocha": 2}
    assert quantities(await client.get("/api/cart")) == {"flat-white": 7, "mocha": 2}


async def test_lines_are_removed_by_body_or_query_and_the_cart_is_cleared(
    client: httpx.AsyncClient,
) -> None:
    for product_id in ("flat-white", "scone", "mocha"):
        await add(client, product_id)

    response = await client.request("DELETE", "/api/cart/remove", json={"product_id": "scone"})
    assert quantities(response) == {"flat-white": 1, "mocha": 1}
    response = await client.delete("/api/cart/remove", params={"product_id": "mocha"})
    assert quantities(response) == {"flat-white": 1}
    response = await client.delete("/api/cart/remove", params={"product_id": "not-in-cart"})
    assert quantities(response) == {"flat-white": 1}

    response = await client.post("/api/cart/clear")
    assert response.status_code == 200
    assert response.json()["lines"] == []
    assert response.json()["checkout_ready"] is False
    assert quantities(await client.get("/api/cart")) == {}


async def test_removing_needs_one_product_named_once(client: httpx.AsyncClient) -> None:
    await add(client, "scone")
    body = assert_problem(await client.delete("/api/cart/remove"), 422, "validation-error")
    assert body["errors"][0]["field"] == "body.product_id"
    response = await client.request(
        "DELETE", "/api/cart/remove", params={"product_id": "mocha"}, json={"product_id": "scone"}
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["field"] == "query.product_id"
    assert quantities(await client.get("/api/cart")) == {"scone": 1}


async def test_writes_without_a_cart_start_none(client: httpx.AsyncClient, redis: Any) -> None:
    for response in (
        await client.post("/api/cart/clear"),
        await client.delete("/api/cart/remove", params={"product_id": "scone"}),
        await update(client, "scone", 0),
    ):
        assert response.status_code == 200
        assert response.json()["lines"] == []
        assert "set-cookie" not in response.headers
    assert await cart_keys(redis) == []


# --- Availability ---------------------------------------------------------------------------


async def test_asking_for_more_than_is_left_is_409_with_the_quantity_available(
    client: httpx.AsyncClient,
) -> None:
    await add(client, "mocha", 2)

    body = assert_problem(await add(client, "mocha", 2), 409, "insufficient-stock")

    assert body["available"] == 3
    assert body["in_cart"] == 2
    assert body["requested"] == 4
    assert body["shortfalls"] == [
        {"product_id": "mocha", "requested": 4, "available": 3, "reason": "insufficient"}
    ]
    response = await update(client, "mocha", 4)
    assert assert_problem(response, 409, "insufficient-stock")["available"] == 3
    assert quantities(await client.get("/api/cart")) == {"mocha": 2}


async def test_a_line_cannot_go_above_the_products_max_per_order(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await add(client, "scone", 5), 409, "insufficient-stock")
    assert (body["available"], body["max_per_order"]) == (4, 4)
    assert "per order" in body["detail"]

    assert quantities(await add(client, "scone", 4)) == {"scone": 4}
    assert_problem(await add(client, "scone", 1), 409, "insufficient-stock")
    assert quantities(await client.get("/api/cart")) == {"scone": 4}


async def test_sold_out_switched_off_and_unknown_products_cannot_be_added(
    client: httpx.AsyncClient, redis: Any
) -> None:
    sold_out = assert_problem(await add(client, "cold-brew"), 409, "insufficient-stock")
    assert sold_out["available"] == 0
    assert sold_out["shortfalls"][0]["reason"] == "insufficient"

    switched_off = assert_problem(await add(client, "seasonal-pie"), 409, "insufficient-stock")
    assert switched_off["available"] == 0
    assert switched_off["shortfalls"][0]["reason"] == "unavailable"

    unknown = assert_problem(await add(client, "no-such-cake"), 404, "unknown-product")
    assert unknown["product_ids"] == ["no-such-cake"]

    assert await cart_keys(redis) == []
    assert COOKIE_NAME not in client.cookies


async def test_lines_that_can_no_longer_be_fulfilled_are_flagged_not_dropped(
    client: httpx.AsyncClient, shop: InventoryStore, redis: Any
) -> None:
    await add(client, "mocha", 3)
    await add(client, "scone", 2)
    await add(client, "flat-white", 2)

    await shop.adjust("mocha", -2)
    await shop.set_availability("scone", False)
    await shop.delete_product("flat-white")
    await invalidate_menu(redis)  # what the stock change's stream consumer does

    body = (await client.get("/api/cart")).json()
    lines = {line["product_id"]: line for line in body["lines"]}
    assert set(lines) == {"mocha", "scone", "flat-white"}
    assert lines["mocha"]["fulfillable"] is False
    assert lines["mocha"]["stock"] == {"status": "low_stock", "available": 1}
    assert lines["mocha"]["issue"]["code"] == "insufficient_stock"
    assert lines["mocha"]["issue"]["max_quantity"] == 1
    assert "Only 1" in lines["mocha"]["issue"]["message"]
    assert lines["scone"]["issue"]["code"] == "unavailable"
    assert lines["scone"]["stock"]["status"] == "out_of_stock"
    assert lines["flat-white"]["issue"]["code"] == "unknown_product"
    assert lines["flat-white"]["unit_price_cents"] is None
    assert body["checkout_ready"] is False
    assert body["totals"]["item_count"] == 3 + 2 + 2
    assert body["totals"]["subtotal_cents"] == 3 * 380 + 2 * 295

    # The shopper fixes the cart: the line of a product that is gone can still be removed.
    await client.delete("/api/cart/remove", params={"product_id": "flat-white"})
    await client.delete("/api/cart/remove", params={"product_id": "scone"})
    response = await update(client, "mocha", 1)
    assert response.json()["checkout_ready"] is True


# --- Bounds and bad input -------------------------------------------------------------------


async def test_lines_and_quantities_are_bounded(
    make_settings: Callable[..., Settings], aws: AWSClients, redis: Any
) -> None:
    settings = make_settings(cart_max_lines=2, cart_max_quantity=5)
    await open_shop(settings, aws)
    async with app_client(settings) as client:
        body = assert_problem(await add(client, "flat-white", 6), 422, "validation-error")
        assert body["errors"][0]["field"] == "body.quantity"
        assert "5" in body["errors"][0]["message"]
        assert quantities(await add(client, "flat-white", 5)) == {"flat-white": 5}
        full = assert_problem(await add(client, "flat-white", 1), 409, "cart-quantity-limit")
        assert full["max_quantity"] == 5

        await add(client, "mocha")
        assert_problem(await add(client, "scone"), 409, "cart-full")
        assert quantities(await client.get("/api/cart")) == {"flat-white": 5, "mocha": 1}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"product_id": "scone", "quantity": -1}, "body.quantity"),
        ({"product_id": "scone", "quantity": 0}, "body.quantity"),
        ({"product_id": "scone", "quantity": 10**12}, "body.quantity"),
        ({"product_id": "scone", "quantity": 2.5}, "body.quantity"),
        ({"product_id": "scone", "quantity": "2"}, "body.quantity"),
        ({"product_id": "scone", "quantity": True}, "body.quantity"),
        ({"product_id": "Scone!", "quantity": 1}, "body.product_id"),
        ({"product_id": "", "quantity": 1}, "body.product_id"),
        ({"product_id": "a" * 65, "quantity": 1}, "body.product_id"),
        ({"quantity": 1}, "body.product_id"),
        ({"product_id": 7, "quantity": 1}, "body.product_id"),
    ],
)
async def test_bad_quantities_and_product_ids_are_422_with_the_field_and_write_nothing(
    client: httpx.AsyncClient, redis: Any, payload: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/cart/add", json=payload)

    body = assert_problem(response, 422, "validation-error")
    assert [error["field"] for error in body["errors"]] == [field]
    assert await cart_keys(redis) == []
    assert "set-cookie" not in response.headers


async def test_a_negative_update_is_422(client: httpx.AsyncClient) -> None:
    await add(client, "scone", 2)
    response = await update(client, "scone", -1)
    assert assert_problem(response, 422, "validation-error")["errors"][0]["field"] == (
        "body.quantity"
    )
    assert quantities(await client.get("/api/cart")) == {"scone": 2}


async def test_cart_writes_are_rate_limited_per_client_with_retry_after(
    make_settings: Callable[..., Settings], aws: AWSClients, redis: Any
) -> None:
    settings = make_settings(rate_limit_cart_per_minute=3)
    await open_shop(settings, aws)
    async with app_client(settings) as client:
        for _ in range(3):
            assert (await add(client, "flat-white")).status_code == 200

        response = await add(client, "flat-white")

        body = assert_problem(response, 429, "rate-limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert body["retry_after"] == int(response.headers["retry-after"])
        assert_problem(await client.post("/api/cart/clear"), 429, "rate-limited")
        assert quantities(await client.get("/api/cart")) == {"flat-white": 3}


async def counted_hits(redis: Any) -> int:
    """Cart writes counted against the test client's address in the current window."""
    keys = [key async for key in redis.scan_iter("ratelimit:cart:*")]
    return sum([int(await redis.get(key)) for key in keys])


async def test_every_cart_add_counts_once_whichever_way_it_takes(
    client: httpx.AsyncClient, redis: Any
) -> None:
    # The first add finds no menu cache (it refills it), the next one this process's parse of
    # a cache it has not read yet, later ones go the one-round-trip way; an invalidation
    # in between sends a parsed add back the long way after its script has counted it.
    await add(client, "flat-white")
    await add(client, "scone")
    await add(client, "mocha")
    assert await counted_hits(redis) == 3
    await invalidate_menu(redis)
    await add(client, "flat-white")
    await add(client, "flat-white")
    assert await counted_hits(redis) == 5
    for refused in (
        await add(client, "no-such-product"),  # 404
        await add(client, "cold-brew"),  # 409, sold out
        await client.post("/api/cart/add", json={"product_id": "scone", "quantity": 0}),  # 422
    ):
        assert refused.status_code in {404, 409, 422}
    assert await counted_hits(redis) == 8
    assert quantities(await client.get("/api/cart")) == {"flat-white": 3, "mocha": 1, "scone": 1}


async def test_over_the_limit_every_add_is_429_first_even_with_a_body_that_fails_validation(
    make_settings: Callable[..., Settings], aws: AWSClients, redis: Any
) -> None:
    """The add counts inside its own script and still answers as the rate-limit dependency
    did: over the limit, 429 comes before validation (422), unknown products (404) and
    stock (409), and a refused body counts like any other add. A body that is not JSON at
    all counts too (the dependency, run after FastAPI parsed the JSON, left it out)."""
    settings = make_settings(rate_limit_cart_per_minute=4, cart_max_quantity=5)
    await open_shop(settings, aws)
    async with app_client(settings) as client:
        invalid = await client.post("/api/cart/add", json={"product_id": "scone", "quantity": 0})
        assert_problem(invalid, 422, "validation-error")
        assert_problem(await add(client, "scone", 6), 422, "validation-error")  # the setting
        assert (await add(client, "scone")).status_code == 200
        assert await counted_hits(redis) == 3
        not_json = await client.post(
            "/api/cart/add", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_problem(not_json, 422, "validation-error")
        assert await counted_hits(redis) == 4

        for response in (
            await add(client, "flat-white"),
            await client.post("/api/cart/add", json={"product_id": "scone", "quantity": 0}),
            await client.post("/api/cart/add", json={"product": "scone", "extra": 1}),
            await add(client, "scone", 6),
            await add(client, "no-such-product"),
            await add(client, "cold-brew"),
        ):
            body = assert_problem(response, 429, "rate-limited")
            assert body["retry_after"] == int(response.headers["retry-after"])
            assert 1 <= body["retry_after"] <= 60
            assert (body["limit"], body["window_seconds"]) == (4, 60)
            assert "set-cookie" not in response.headers
            assert HEADER_NAME not in response.headers
        assert await counted_hits(redis) == 10

        not_json = await client.post(
            "/api/cart/add", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_problem(not_json, 429, "rate-limited")
        assert await counted_hits(redis) == 11
        assert quantities(await client.get("/api/cart")) == {"scone": 1}


class RedisCommands:
    """The commands clients sent to one database of the Redis server (MONITOR) from entering
    until :meth:`stop`; those a Lua script ran are part of its EVALSHA, not listed."""

    def __init__(self, redis: Any, database: int) -> None:
        self.redis = redis
        self.database = database

    async def __aenter__(self) -> RedisCommands:
        # The end marker goes through a connection opened before, so its set-up is not seen.
        self.marker = await self.redis.connection_pool.get_connection()
        self.monitor = self.redis.monitor()
        await self.monitor.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.monitor.__aexit__(*exc)
        await self.redis.connection_pool.release(self.marker)

    async def stop(self) -> list[str]:
        marker = f"end-of-test-{uuid.uuid4().hex}"
        await self.marker.send_command("ECHO", marker)
        await self.marker.read_response()
        seen: list[str] = []
        while True:
            info = await asyncio.wait_for(self.monitor.next_command(), 5)
            if int(info["db"]) != self.database or info.get("client_type") == "lua":
                continue
            if marker in info["command"]:
                return seen
            seen.append(info["command"])


def database_of(settings: Settings) -> int:
    return int(settings.redis_url.rsplit("/", 1)[1] or 0)


async def test_a_cart_add_is_one_redis_command_refused_or_not(
    make_settings: Callable[..., Settings], aws: AWSClients, redis: Any
) -> None:
    settings = make_settings(rate_limit_cart_per_minute=4)
    await open_shop(settings, aws)
    async with app_client(settings) as client:
        await add(client, "flat-white")
        await add(client, "flat-white")  # this process has parsed the menu cache now
        token = (await add(client, "scone")).headers[HEADER_NAME]
        async with RedisCommands(redis, database_of(settings)) as monitor:
            added = await client.post(
                "/api/cart/add", json={"product_id": "mocha"}, headers={HEADER_NAME: token}
            )
            one_add = await monitor.stop()
        assert added.status_code == 200
        assert quantities(added) == {"flat-white": 2, "scone": 1, "mocha": 1}
        assert len(one_add) == 1 and one_add[0].startswith("EVALSHA"), one_add
        assert "ratelimit:cart:" in one_add[0] and "menu:v1" in one_add[0]

        async with RedisCommands(redis, database_of(settings)) as monitor:
            refused = await add(client, "mocha")
            one_refusal = await monitor.stop()
        assert_problem(refused, 429, "rate-limited")
        assert len(one_refusal) == 1 and one_refusal[0].startswith("EVALSHA"), one_refusal
        assert quantities(await client.get("/api/cart")) == {
            "flat-white": 2,
            "scone": 1,
            "mocha": 1,
        }


async def test_an_oversized_body_is_413_whether_declared_or_streamed(
    make_settings: Callable[..., Settings], aws: AWSClients, redis: Any
) -> None:
    settings = make_settings(max_body_bytes=1024)
    await open_shop(settings, aws)
    padded = b'{"product_id": "scone", "quantity": 1, "pad": "' + b"x" * 2000 + b'"}'

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(padded), 256):
            yield padded[start : start + 256]

    async with app_client(settings) as client:
        declared = await client.post(
            "/api/cart/add", content=padded, headers={"content-type": "application/json"}
        )
        chunked = await client.post(
            "/api/cart/add", content=streamed(), headers={"content-type": "application/json"}
        )
        for response in (declared, chunked):
            body = assert_problem(response, 413, "payload-too-large")
            assert body["max_bytes"] == 1024
        assert "content-length" not in chunked.request.headers
        # A read passes the guard untouched only while it announces no body.
        oversized_read = await client.request("GET", "/api/menu", content=padded)
        assert_problem(oversized_read, 413, "payload-too-large")
        assert quantities(await client.get("/api/cart")) == {}
    assert await cart_keys(redis) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        None,
    ],
)
async def test_a_write_that_is_not_json_is_415(
    client: httpx.AsyncClient, redis: Any, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = await client.post(
        "/api/cart/add", content=b'{"product_id": "scone"}', headers=headers
    )

    assert_problem(response, 415, "unsupported-media-type")
    assert await cart_keys(redis) == []


async def test_json_with_a_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/cart/add",
        content=b'{"product_id": "scone"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert quantities(response) == {"scone": 1}


async def test_redis_unreachable_is_503_with_retry_after(
    make_settings: Callable[..., Settings], shop: InventoryStore, settings: Settings
) -> None:
    down = make_settings(
        resource_prefix=settings.resource_prefix,
        redis_url="redis://127.0.0.1:9/0",
    )
    token = issue_cart_token(new_cart_id(), down)
    async with app_client(down) as client:
        for response in (
            await add(client, "scone"),
            await client.get("/api/cart", headers={HEADER_NAME: token}),
        ):
            body = assert_problem(response, 503, "service-unavailable")
            assert response.headers["retry-after"]
            assert "unreachable" in body["detail"]


async def test_the_openapi_schema_documents_every_cart_route_and_error(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    paths = schema["paths"]
    expected = {
        "/api/cart": {"get"},
        "/api/cart/add": {"post"},
        "/api/cart/update": {"put"},
        "/api/cart/remove": {"delete"},
        "/api/cart/clear": {"post"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods
    add_operation = paths["/api/cart/add"]["post"]
    assert add_operation["summary"]
    assert {"200", "404", "409", "413", "415", "422", "429", "503"} <= set(
        add_operation["responses"]
    )
    assert HEADER_NAME in add_operation["responses"]["200"]["headers"]
    assert "application/problem+json" in add_operation["responses"]["409"]["content"]
    parameters = {parameter["name"] for parameter in add_operation["parameters"]}
    assert parameters == {"x-cart-token", COOKIE_NAME}
    view = schema["components"]["schemas"]["CartView"]
    assert {"lines", "totals", "checkout_ready"} <= set(view["properties"])


# --- The add's own body validation (JsonBodyRoute) --------------------------------------------

# A body sent as exactly application/json is validated by the route itself; with a charset it
# always takes FastAPI's own handling. Both must answer alike, byte for byte.
SAME_ANSWER_BODIES = [
    b'{"product_id": "scone", "quantity": 2}',
    b'{"product_id": "scone"}',
    b'  {"product_id":"scone","quantity":1}\n',
    b'{"product_id": "scone", "product_id": "mocha"}',
    b'{"product_id": "nope", "quantity": 1}',
    b'{"product_id": "cold-brew", "quantity": 1}',
    b'{"product_id": "scone", "quantity": 5}',
    b"",
    b"{",
    b'{"product_id": "scone"} trailing',
    b'{"product_id": "scone"}{}',
    b"[]",
    b'"scone"',
    b"null",
    b"{}",
    b'{"product_id": "Scone!"}',
    b'{"product_id": "scone\\n"}',
    b'{"product_id": "sc\\ud800one"}',
    b'{"product_id": "' + b"a" * 65 + b'"}',
    b'{"product_id": 7}',
    b'{"product_id": "scone", "quantity": 0}',
    b'{"product_id": "scone", "quantity": 1.0}',
    b'{"product_id": "scone", "quantity": 1.5}',
    b'{"product_id": "scone", "quantity": "1"}',
    b'{"product_id": "scone", "quantity": true}',
    b'{"product_id": "scone", "quantity": null}',
    b'{"product_id": "scone", "quantity": NaN}',
    b'{"product_id": "scone", "quantity": 1e0}',
    b'{"product_id": "scone", "quantity": 100000000000000000000000}',
    b'{"product_id": "scone", "quantity": 1000}',
    b'{"product_id": "scone", "price_cents": 1}',
    b'\xef\xbb\xbf{"product_id": "scone"}',
    b'{"product_id": "sc\xffone"}',
    b'{"product_id": "scone", "quantity": -1, "extra": []}',
]


@pytest.mark.parametrize("payload", SAME_ANSWER_BODIES)
async def test_the_add_answers_every_body_exactly_as_fastapi_would(
    make_settings: Callable[..., Settings], shop: InventoryStore, settings: Settings, payload: bytes
) -> None:
    roomy = make_settings(resource_prefix=settings.resource_prefix, rate_limit_cart_per_minute=1000)
    answers = []
    async with app_client(roomy) as client:
        for content_type in ("application/json", "application/json; charset=utf-8"):
            client.cookies.clear()  # a new cart each time
            response = await client.post(
                "/api/cart/add", content=payload, headers={"content-type": content_type}
            )
            headers = dict(response.headers)
            for per_cart in ("set-cookie", HEADER_NAME.lower()):
                assert (per_cart in headers) == (response.status_code == 200)
                headers.pop(per_cart, None)
            answers.append((response.status_code, headers, response.content))

    (status, headers, content), (fastapi_status, fastapi_headers, fastapi_content) = answers
    assert status == fastapi_status
    assert content == fastapi_content
    assert headers == fastapi_headers


async def test_over_the_limit_a_body_validated_by_the_route_is_429_first(
    make_settings: Callable[..., Settings], shop: InventoryStore, settings: Settings
) -> None:
    tight = make_settings(resource_prefix=settings.resource_prefix, rate_limit_cart_per_minute=2)
    async with app_client(tight) as client:
        statuses = [(await add(client, "scone")).status_code for _ in range(2)]
        for payload in (b'{"product_id": "scone"}', b"{", b'{"quantity": 0}'):
            response = await client.post(
                "/api/cart/add", content=payload, headers={"content-type": "application/json"}
            )
            assert_problem(response, 429, "rate-limited")
            assert response.headers["retry-after"]
    assert statuses == [200, 200]
