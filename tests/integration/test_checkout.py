from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from pickup.adapters.aws import AWSClients
from pickup.adapters.orm import Order, OutboxMessage
from pickup.orders.status_cache import invalidate_status
from pickup.provisioning import bootstrap
from pickup.runtime import Resources
from pickup.settings import Settings
from tests.helpers import app_client, product
from tests.integration.test_worker import eventually

PROBLEM = "application/problem+json"
ALWAYS_OPEN = "mon-sun 00:00-24:00"


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        opening_hours=ALWAYS_OPEN,
        lead_minutes=10,
        slot_capacity=1000,
        rate_limit_checkout_per_minute=10_000,
        rate_limit_cart_per_minute=10_000,
    )


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    await bootstrap(shop_settings)
    async with Resources.open(shop_settings) as resources:
        for item in (
            product("croissant", 30, price_cents=280),
            product("bun", 10, price_cents=330),
            product("loaf", 5, price_cents=520),
        ):
            await resources.inventory.put_product(item, replace_inventory=True)
        yield resources


@pytest.fixture
async def client(shop: Resources) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(shop.settings) as http:
        yield http


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"product_id": "croissant", "quantity": 2}, {"product_id": "bun", "quantity": 1}],
    }
    body.update(overrides)
    return body


async def checkout(
    http: httpx.AsyncClient, body: dict[str, Any] | None = None, key: str | None = None
) -> httpx.Response:
    return await http.post(
        "/api/orders",
        json=order_body() if body is None else body,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )


async def stock(resources: Resources, product_id: str) -> tuple[int, int, int]:
    item = await resources.inventory.get_product(product_id, consistent_read=True)
    assert item is not None
    return item.on_hand, item.reserved, item.available


async def order_count(resources: Resources) -> int:
    async with resources.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def queued_messages(aws: AWSClients, queue: str, expected: int) -> list[dict[str, Any]]:
    sqs = await aws.client("sqs")
    url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    for _ in range(20):
        received = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        for message in received.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            assert message["MessageAttributes"]["event_type"]["StringValue"] == "order.placed"
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(bodies) >= expected:
            break
    return bodies


async def test_an_order_is_accepted_queued_and_trackable(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    response = await checkout(client)

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "pending"
    assert len(accepted["code"]) == 6
    assert response.headers["location"] == f"/api/orders/status/{accepted['order_id']}"
    assert accepted["subtotal_cents"] == 2 * 280 + 330  # the server's prices
    assert accepted["total_cents"] == accepted["subtotal_cents"]
    assert datetime.fromisoformat(accepted["estimated_pickup_at"]) >= datetime.now(UTC)
    assert await stock(shop, "croissant") == (30, 2, 28)
    assert await stock(shop, "bun") == (10, 1, 9)

    messages = await queued_messages(shop.aws, shop.settings.names.order_queue, 1)
    assert [m["order_id"] for m in messages] == [accepted["order_id"]]
    assert messages[0]["type"] == "order.placed"
    assert messages[0]["lines"] == [
        {"product_id": "bun", "quantity": 1},
        {"product_id": "croissant", "quantity": 2},
    ]

    status = await client.get(accepted["status_url"])
    assert status.status_code == 200
    view = status.json()
    assert view["code"] == accepted["code"]
    assert [step["state"] for step in view["steps"]] == [
        "current",
        "upcoming",
        "upcoming",
        "upcoming",
        "upcoming",
    ]
    assert "ada" not in status.text.lower()  # no personal data in the status view

    details = await client.get(
        accepted["details_url"], headers={"X-Order-Token": accepted["lookup_token"]}
    )
    assert details.status_code == 200
    assert details.json()["customer"]["email"] == "ada@example.com"
    assert [entry["to_status"] for entry in details.json()["history"]] == ["pending"]
    by_query = await client.get(accepted["details_url"], params={"token": accepted["lookup_token"]})
    assert by_query.status_code == 200


async def test_order_details_stay_hidden_without_the_right_token(
    client: httpx.AsyncClient,
) -> None:
    accepted = (await checkout(client)).json()
    other = (await checkout(client)).json()
    for headers in ({}, {"X-Order-Token": "guess"}, {"X-Order-Token": other["lookup_token"]}):
        response = await client.get(accepted["details_url"], headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
    unknown = await client.get(
        f"/api/orders/{uuid.uuid4()}", headers={"X-Order-Token": accepted["lookup_token"]}
    )
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == response.json()["detail"].replace(
        accepted["order_id"], unknown.url.path.rsplit("/", 1)[-1]
    )


async def test_an_unknown_order_is_404_and_a_malformed_id_422(client: httpx.AsyncClient) -> None:
    unknown = await client.get(f"/api/orders/status/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert unknown.json()["type"].endswith("/order-not-found")
    malformed = await client.get("/api/orders/status/not-an-id")
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "path.order_id"


async def test_a_hundred_checkouts_for_thirty_units_sell_exactly_thirty(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    body = order_body(items=[{"product_id": "croissant", "quantity": 1}])
    responses = await asyncio.gather(*(checkout(client, body) for _ in range(100)))

    codes = [response.status_code for response in responses]
    assert codes.count(202) == 30, codes
    assert codes.count(409) == 70
    for response in responses:
        if response.status_code == 409:
            problem = response.json()
            assert problem["type"].endswith("/insufficient-stock")
            assert problem["shortfalls"][0]["product_id"] == "croissant"
            assert problem["shortfalls"][0]["available"] == 0
    assert await stock(shop, "croissant") == (30, 30, 0)
    assert await order_count(shop) == 30


async def test_a_short_line_fails_the_whole_order_and_holds_nothing(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    body = order_body(
        items=[{"product_id": "croissant", "quantity": 3}, {"product_id": "loaf", "quantity": 6}]
    )
    response = await checkout(client, body)
    assert response.status_code == 409
    assert response.json()["shortfalls"] == [
        {"product_id": "loaf", "requested": 6, "available": 5, "reason": "insufficient"}
    ]
    assert await stock(shop, "croissant") == (30, 0, 30)
    assert await stock(shop, "loaf") == (5, 0, 5)
    assert await order_count(shop) == 0


async def test_a_retry_with_the_same_key_returns_the_same_order(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    key = str(uuid.uuid4())
    first = await checkout(client, key=key)
    second = await checkout(client, key=key)
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await order_count(shop) == 1
    assert await stock(shop, "croissant") == (30, 2, 28)


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    key = str(uuid.uuid4())
    assert (await checkout(client, key=key)).status_code == 202
    other = await checkout(client, order_body(special_instructions="extra hot"), key=key)
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert await order_count(shop) == 1


async def test_concurrent_requests_with_one_key_create_one_order(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    key = str(uuid.uuid4())
    responses = await asyncio.gather(*(checkout(client, key=key) for _ in range(10)))
    codes = sorted(response.status_code for response in responses)
    assert set(codes) <= {202, 409}
    accepted = {
        response.json()["order_id"] for response in responses if response.status_code == 202
    }
    assert len(accepted) == 1
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"].endswith("/idempotency-key-in-progress")
            assert response.headers["retry-after"] == "1"
    assert await order_count(shop) == 1
    assert await stock(shop, "croissant") == (30, 2, 28)


@pytest.fixture
async def connection_killer(shop: Resources) -> AsyncIterator[str]:
    """Orders for this customer name kill their own database connection mid-transaction."""
    name = "Connection Lost"
    async with shop.engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE OR REPLACE FUNCTION pickup_test_kill() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.customer_name = '{name}' THEN "
                "PERFORM pg_terminate_backend(pg_backend_pid()); "
                "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        await connection.execute(
            text(
                "CREATE TRIGGER pickup_test_kill BEFORE INSERT ON orders "
                "FOR EACH ROW EXECUTE FUNCTION pickup_test_kill()"
            )
        )
    yield name
    async with shop.engine.begin() as connection:
        await connection.execute(text("DROP TRIGGER pickup_test_kill ON orders"))
        await connection.execute(text("DROP FUNCTION pickup_test_kill()"))


async def test_a_database_failure_after_reserving_releases_the_stock(
    client: httpx.AsyncClient, shop: Resources, connection_killer: str
) -> None:
    body = order_body(customer={"name": connection_killer, "email": "x@example.com"})
    key = str(uuid.uuid4())
    response = await checkout(client, body, key=key)

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert "retry-after" in response.headers
    assert "Traceback" not in response.text
    assert await stock(shop, "croissant") == (30, 0, 30)
    assert await stock(shop, "bun") == (10, 0, 10)
    assert await order_count(shop) == 0
    # The key was given back: the same request can be retried once the database is back.
    retry = await checkout(client, order_body(), key=str(uuid.uuid4()))
    assert retry.status_code == 202


async def test_an_order_taken_while_sqs_is_down_reaches_the_queue_once_it_is_back(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    sqs = await shop.aws.client("sqs")
    queue = shop.settings.names.order_queue
    await sqs.delete_queue(QueueUrl=(await sqs.get_queue_url(QueueName=queue))["QueueUrl"])

    response = await checkout(client)
    assert response.status_code == 202
    order_id = response.json()["order_id"]
    async with shop.sessions() as session:
        pending = (await session.scalars(select(OutboxMessage))).all()
    assert [(m.sent_at, m.payload["order_id"]) for m in pending] == [(None, order_id)]
    assert pending[0].attempts == 1 and pending[0].last_error

    await bootstrap(shop.settings)  # the queue is back; the app's relay loop delivers
    messages = await queued_messages(shop.aws, queue, 1)
    assert [m["order_id"] for m in messages] == [order_id]

    async def marked_sent() -> bool:
        # The relay marks the row after SQS took the message: the test may read in between.
        async with shop.sessions() as session:
            return (await session.scalar(select(OutboxMessage.sent_at))) is not None

    await eventually(marked_sent)


async def test_the_status_cache_is_invalidated_on_change(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    accepted = (await checkout(client)).json()
    assert (await client.get(accepted["status_url"])).json()["status"] == "pending"
    order_id = uuid.UUID(accepted["order_id"])
    async with shop.sessions.begin() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        order.status = "confirmed"  # type: ignore[assignment]
    # Still the cached view until the writer invalidates it, as every status change does.
    assert (await client.get(accepted["status_url"])).json()["status"] == "pending"
    await invalidate_status(shop.redis, order_id)
    assert (await client.get(accepted["status_url"])).json()["status"] == "confirmed"


ADA = {"name": "A", "email": "a@example.com"}


def in_hours(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer": {**ADA, "email": "not-an-email"}}, "body.customer.email"),
        ({"customer": {**ADA, "phone": "0770"}}, "body.customer.phone"),
        ({"customer": {**ADA, "name": ""}}, "body.customer.name"),
        ({"customer": {**ADA, "name": "A" * 101}}, "body.customer.name"),
        ({"customer": {**ADA, "name": "Line\nbreak"}}, "body.customer.name"),
        ({"customer": {**ADA, "sms_opt_in": True}}, "body.customer"),
        ({"items": [{"product_id": "croissant", "quantity": 0}]}, "body.items.0.quantity"),
        ({"items": [{"product_id": "croissant", "quantity": -2}]}, "body.items.0.quantity"),
        ({"items": [{"product_id": "croissant", "quantity": 10**9}]}, "body.items.0.quantity"),
        ({"items": [{"product_id": "Bad Id!", "quantity": 1}]}, "body.items.0.product_id"),
        ({"items": [{"product_id": "no-such-thing", "quantity": 1}]}, "body.items"),
        ({"items": [{"product_id": "croissant", "quantity": 11}]}, "body.items"),
        ({"items": []}, "body.items"),
        ({"special_instructions": "x" * 501}, "body.special_instructions"),
        ({"pickup_time": in_hours(-30)}, "body.pickup_time"),
        ({"pickup_time": in_hours(5)}, "body.pickup_time"),
        ({"pickup_time": in_hours(60 * 24 * 30)}, "body.pickup_time"),
        ({"unexpected": 1}, "body.unexpected"),
    ],
)
async def test_bad_input_is_a_precise_problem_and_writes_nothing(
    client: httpx.AsyncClient, shop: Resources, change: dict[str, Any], field: str
) -> None:
    response = await checkout(client, order_body(**change))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert field in [error["field"] for error in problem.get("errors", [])], problem
    assert await order_count(shop) == 0
    assert await stock(shop, "croissant") == (30, 0, 30)


async def test_a_checkout_without_an_idempotency_key_is_refused(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    response = await client.post("/api/orders", json=order_body())
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert await order_count(shop) == 0


async def test_an_empty_cart_cannot_be_ordered(client: httpx.AsyncClient) -> None:
    body = order_body()
    del body["items"]
    response = await checkout(client, body)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/empty-order")


async def test_pickup_slots_show_what_is_left(
    client: httpx.AsyncClient, make_settings: Callable[..., Settings], shop: Resources
) -> None:
    slots = (await client.get("/api/pickup-slots")).json()
    assert slots["asap"] is not None
    first = slots["slots"][0]
    assert first["available"] is True
    assert first["remaining"] == shop.settings.slot_capacity


async def test_a_full_slot_is_refused_and_as_soon_as_possible_moves_on(
    shop: Resources, make_settings: Callable[..., Settings]
) -> None:
    tight = make_settings(
        resource_prefix=shop.settings.resource_prefix,
        opening_hours=ALWAYS_OPEN,
        lead_minutes=10,
        slot_capacity=1,
        rate_limit_checkout_per_minute=10_000,
    )
    async with app_client(tight) as http:
        when = in_hours(120)
        first = await checkout(http, order_body(pickup_time=when))
        second = await checkout(http, order_body(pickup_time=when))
        asap_one = await checkout(http, order_body())
        asap_two = await checkout(http, order_body())
    assert first.status_code == 202
    assert second.status_code == 409
    assert second.json()["type"].endswith("/slot-full")
    assert asap_one.status_code == asap_two.status_code == 202
    assert asap_one.json()["pickup_at"] != asap_two.json()["pickup_at"]
    assert await stock(shop, "croissant") == (30, 6, 24)  # the refused order holds nothing


async def test_the_whole_journey_from_cart_to_queue_to_status(
    client: httpx.AsyncClient, shop: Resources
) -> None:
    await client.get("/api/menu")  # the menu is cached now; checkout must invalidate it

    added = await client.post("/api/cart/add", json={"product_id": "loaf", "quantity": 2})
    assert added.status_code == 200, added.text
    assert "pickup_cart" in client.cookies
    await client.post("/api/cart/add", json={"product_id": "bun", "quantity": 1})
    cart = (await client.get("/api/cart")).json()
    assert cart["checkout_ready"] is True

    body = order_body()
    del body["items"]  # order what is in the cart
    response = await checkout(client, body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert {(line["product_id"], line["quantity"]) for line in accepted["items"]} == {
        ("loaf", 2),
        ("bun", 1),
    }
    assert accepted["total_cents"] == 2 * 520 + 330

    assert (await client.get("/api/cart")).json()["lines"] == []  # the cart was cleared
    assert (await client.get("/api/menu/loaf")).json()["stock"]["available"] == 3  # low stock
    messages = await queued_messages(shop.aws, shop.settings.names.order_queue, 1)
    assert [m["order_id"] for m in messages] == [accepted["order_id"]]
    status = (await client.get(accepted["status_url"])).json()
    assert status["status"] == "pending"
    assert status["label"] == "Received"


async def test_checkouts_beyond_the_rate_limit_are_told_when_to_retry(
    shop: Resources, make_settings: Callable[..., Settings]
) -> None:
    limited = make_settings(
        resource_prefix=shop.settings.resource_prefix,
        opening_hours=ALWAYS_OPEN,
        slot_capacity=1000,
        rate_limit_checkout_per_minute=3,
    )
    async with app_client(limited) as http:
        codes = [(await checkout(http)).status_code for _ in range(5)]
        refused = await checkout(http)
    assert codes == [202, 202, 202, 429, 429]
    assert refused.headers["content-type"] == PROBLEM
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert await order_count(shop) == 3


@pytest.mark.parametrize(
    "broken",
    [{"aws_endpoint_url": "http://127.0.0.1:9"}, {"redis_url": "redis://127.0.0.1:9/0"}],
    ids=["dynamodb-down", "redis-down"],
)
async def test_an_unreachable_store_is_a_503_with_retry_after_and_no_order(
    shop: Resources, make_settings: Callable[..., Settings], broken: dict[str, str]
) -> None:
    outage = make_settings(
        resource_prefix=shop.settings.resource_prefix, opening_hours=ALWAYS_OPEN, **broken
    )
    async with app_client(outage) as http:
        response = await checkout(http)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text
    assert await order_count(shop) == 0
    assert await stock(shop, "croissant") == (30, 0, 30)
