"""What the platform does when a part of it fails, on real services.

- A checkout killed between its stock reservation and its order commit leaves a reservation
  intent; the sweeper releases that stock once, after a grace period, and never releases a
  reservation that did not happen.
- A checkout stuck past the grace period finds its intent gone and gives up with a 503,
  so the stock the sweeper released is never sold twice.
- Redis down: the menu is still served (from DynamoDB); cart writes answer a 503 problem.
- PostgreSQL down: checkout answers a 503 problem and holds no stock, even when the outage
  starts after the reservation was made.
- SQS refusing: orders are still accepted into the outbox and reach the queue once it is
  back.

Outages are made with :class:`bench.chaos.proxy.CuttableProxy` in front of the shared
servers: cutting it resets every connection and refuses new ones, as a vanished host would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from bench.chaos.proxy import CuttableProxy
from sqlalchemy import func, select

from pickup.adapters.orm import Order, OutboxMessage, ReservationIntent
from pickup.core.inventory import StockLine
from pickup.orders import repository
from pickup.orders.schemas import CheckoutRequest
from pickup.orders.service import ReservationLapsed, place_order
from pickup.outbox.relay import OutboxRelay
from pickup.provisioning import bootstrap
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.sweeper import release_orphaned_reservations
from tests.helpers import app_client
from tests.integration.test_worker import eventually, open_shop, pipeline_settings
from tests.services import ROOT, Services

GRACE = 30


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(make_settings, reservation_intent_grace_seconds=GRACE)


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    async with open_shop(shop_settings) as resources:
        yield resources


async def stock(resources: Resources, product_id: str) -> tuple[int, int, int]:
    item = await resources.inventory.get_product(product_id, consistent_read=True)
    assert item is not None
    return item.on_hand, item.reserved, item.available


async def counts(resources: Resources) -> tuple[int, int]:
    """(orders, reservation intents) in PostgreSQL."""
    async with resources.sessions() as session:
        orders = await session.scalar(select(func.count()).select_from(Order))
        intents = await session.scalar(select(func.count()).select_from(ReservationIntent))
    return int(orders or 0), int(intents or 0)


def after_grace() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=GRACE + 1)


def checkout_request(items: list[tuple[str, int]]) -> CheckoutRequest:
    return CheckoutRequest.model_validate(
        {
            "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items],
        }
    )


async def lock_orders(database_url: str) -> asyncpg.Connection:
    """A connection holding the orders table: checkouts block on their order insert."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("BEGIN")
    await conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    return conn


async def waiting_on_a_lock(conn: asyncpg.Connection) -> bool:
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    return bool(waiting)


CHECKOUT_SCRIPT = """
import asyncio, json, os
from pickup.orders.schemas import CheckoutRequest
from pickup.orders.service import place_order
from pickup.runtime import Resources
from pickup.settings import load_settings

async def main():
    settings = load_settings(**json.loads(os.environ["CHECKOUT_SETTINGS"]))
    request = CheckoutRequest.model_validate(json.loads(os.environ["CHECKOUT_REQUEST"]))
    async with Resources.open(settings) as resources:
        await place_order(resources, request, idempotency_key="killed", cart_id=None)

asyncio.run(main())
"""


async def test_a_checkout_killed_between_reserving_and_saving_has_its_stock_released_once(
    shop: Resources, shop_settings: Settings, services: Services, database_url: str
) -> None:
    holder = await lock_orders(database_url)
    overrides = {
        "env": "test",
        "database_url": database_url,
        "redis_url": services.redis_url,
        "aws_endpoint_url": services.aws_endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "resource_prefix": shop_settings.resource_prefix,
        "opening_hours": shop_settings.opening_hours,
        "slot_capacity": shop_settings.slot_capacity,
    }
    request = {
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"product_id": "croissant", "quantity": 2}],
    }
    env = {
        **os.environ,
        "CHECKOUT_SETTINGS": json.dumps(overrides),
        "CHECKOUT_REQUEST": json.dumps(request),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHECKOUT_SCRIPT, cwd=ROOT, env=env
    )
    try:

        async def reserved() -> bool:
            return await stock(shop, "croissant") == (30, 2, 28)

        async def blocked_on_the_order_insert() -> bool:
            return await waiting_on_a_lock(holder)

        await eventually(reserved, within=30)
        await eventually(blocked_on_the_order_insert, within=30)
        process.send_signal(signal.SIGKILL)  # between the reservation and the commit
        await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await holder.execute("ROLLBACK")
        await holder.close()

    async def settled() -> bool:
        return await counts(shop) == (0, 1)

    await eventually(settled)  # the dead checkout's transaction is rolled back: no order
    assert await stock(shop, "croissant") == (30, 2, 28)  # the reservation it left behind

    assert await release_orphaned_reservations(shop) == 0  # within its grace: left alone
    assert await release_orphaned_reservations(shop, now=after_grace()) == 1
    assert await stock(shop, "croissant") == (30, 0, 30)
    assert await counts(shop) == (0, 0)
    assert await release_orphaned_reservations(shop, now=after_grace()) == 0  # once


async def test_an_intent_whose_reservation_never_happened_releases_nothing(
    shop: Resources,
) -> None:
    # Someone else's real reservation, so a wrong release would not be refused by DynamoDB.
    await place_order(
        shop, checkout_request([("croissant", 3)]), idempotency_key="real", cart_id=None
    )
    assert await stock(shop, "croissant") == (30, 3, 27)
    # A checkout that recorded its intent and died before reserving.
    async with shop.sessions.begin() as session:
        await repository.record_intent(
            session,
            uuid.uuid4(),
            [StockLine.of("croissant", 2).model_dump()],
            datetime.now(UTC),
        )

    assert await release_orphaned_reservations(shop, now=after_grace()) == 0
    assert await stock(shop, "croissant") == (30, 3, 27)
    assert await counts(shop) == (1, 0)


async def test_a_checkout_stuck_past_its_grace_gives_up_after_the_sweeper_released_it(
    shop: Resources, database_url: str
) -> None:
    holder = await lock_orders(database_url)
    checkout = asyncio.create_task(
        place_order(shop, checkout_request([("bun", 4)]), idempotency_key="stuck", cart_id=None)
    )
    try:

        async def reserved() -> bool:
            return await stock(shop, "bun") == (10, 4, 6)

        await eventually(reserved)
        assert await release_orphaned_reservations(shop, now=after_grace()) == 1
        assert await stock(shop, "bun") == (10, 0, 10)
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()

    with pytest.raises(ReservationLapsed) as lapsed:
        await checkout
    assert lapsed.value.status == 503
    assert await stock(shop, "bun") == (10, 0, 10)  # released once, never twice
    assert await counts(shop) == (0, 0)
    # The key was given back: the customer's retry goes through.
    retried = await place_order(
        shop, checkout_request([("bun", 4)]), idempotency_key="stuck", cart_id=None
    )
    assert retried.status == 202
    assert await stock(shop, "bun") == (10, 4, 6)
    assert await counts(shop) == (1, 0)


# --- Outages ------------------------------------------------------------------------------

PROBLEM = "application/problem+json"


@pytest.fixture
def proxies() -> Iterator[Callable[[str], tuple[CuttableProxy, str]]]:
    """``proxy(url)``: a cuttable proxy in front of the server of ``url``, and the URL
    through it."""
    started: list[CuttableProxy] = []

    def proxy(url: str) -> tuple[CuttableProxy, str]:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        line = CuttableProxy(parts.hostname, parts.port).start()
        started.append(line)
        netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{line.port}")
        return line, urlunsplit(parts._replace(netloc=netloc))

    yield proxy
    for line in started:
        line.close()


def order_json(items: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"product_id": pid, "quantity": qty} for pid, qty in items],
    }


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] and problem["title"] and problem["detail"]
    return problem


async def test_while_redis_is_down_the_menu_is_served_and_cart_writes_answer_503(
    make_settings: Callable[..., Settings],
    services: Services,
    proxies: Callable[[str], tuple[CuttableProxy, str]],
    db_engine: Any,
    redis: Any,
) -> None:
    line, redis_url = proxies(services.redis_url)
    settings = pipeline_settings(make_settings, redis_url=redis_url)
    async with open_shop(settings), app_client(settings) as client:
        assert (await client.get("/api/menu")).status_code == 200  # cached in Redis
        added = await client.post("/api/cart/add", json={"product_id": "bun", "quantity": 1})
        assert added.status_code in (200, 201), added.text

        with line.down():
            menu = await client.get("/api/menu")
            assert menu.status_code == 200
            names = {p["id"] for c in menu.json()["categories"] for p in c["products"]}
            assert names == {"croissant", "bun"}  # from DynamoDB
            page = await client.get("/", headers={"Accept": "text/html"})
            assert page.status_code == 200
            assert "Croissant" in page.text
            refused = await client.post(
                "/api/cart/add", json={"product_id": "croissant", "quantity": 1}
            )
            problem = assert_problem(refused, 503)
            assert "try again" in problem["detail"]
            assert refused.headers["Retry-After"]

        async def cart_writable() -> bool:
            again = await client.post(
                "/api/cart/add", json={"product_id": "croissant", "quantity": 1}
            )
            return again.status_code in (200, 201)

        await eventually(cart_writable)  # back by itself once Redis answers again


async def test_while_postgresql_is_down_checkout_answers_503_and_holds_no_stock(
    make_settings: Callable[..., Settings],
    database_url: str,
    proxies: Callable[[str], tuple[CuttableProxy, str]],
    db_engine: Any,
    redis: Any,
) -> None:
    line, proxied = proxies(database_url)
    settings = pipeline_settings(
        make_settings, database_url=proxied, reservation_intent_grace_seconds=GRACE
    )
    async with open_shop(settings) as shop, app_client(settings) as client:
        with line.down():
            refused = await client.post(
                "/api/orders",
                json=order_json([("croissant", 2)]),
                headers={"Idempotency-Key": "key-aaaa"},
            )
            assert_problem(refused, 503)
            assert refused.headers["Retry-After"]
        assert await stock(shop, "croissant") == (30, 0, 30)

        # The outage starts after the reservation: the order insert is waiting on a lock
        # (held on a direct connection) when the line to PostgreSQL is cut.
        holder = await lock_orders(database_url)
        try:
            checkout = asyncio.create_task(
                client.post(
                    "/api/orders",
                    json=order_json([("bun", 3)]),
                    headers={"Idempotency-Key": "key-bbbb"},
                )
            )

            async def reserved() -> bool:
                return await stock(shop, "bun") == (10, 3, 7)

            await eventually(reserved)
            await eventually(lambda: waiting_on_a_lock(holder))
            line.cut()
            answer = await checkout
        finally:
            await holder.execute("ROLLBACK")
            await holder.close()
        assert_problem(answer, 503)
        assert await stock(shop, "bun") == (10, 0, 10)  # released at once, PostgreSQL or not
        line.restore()

        # Once PostgreSQL is back orders go through again. The failed request's key could
        # not be given back while PostgreSQL was down: it answers "in progress" (409, retry)
        # until its claim lapses. The intent it left behind is cleared without a release.
        async def accepted() -> bool:
            retried = await client.post(
                "/api/orders",
                json=order_json([("bun", 3)]),
                headers={"Idempotency-Key": "key-cccc"},
            )
            return retried.status_code == 202

        await eventually(accepted)
        same_key = await client.post(
            "/api/orders", json=order_json([("bun", 3)]), headers={"Idempotency-Key": "key-bbbb"}
        )
        assert assert_problem(same_key, 409)["type"].endswith("/idempotency-key-in-progress")
        assert await release_orphaned_reservations(shop, now=after_grace()) == 0
        assert await stock(shop, "bun") == (10, 3, 7)
        assert await counts(shop) == (1, 0)


async def test_while_sqs_refuses_orders_are_accepted_and_reach_the_queue_once_it_is_back(
    shop: Resources, shop_settings: Settings
) -> None:
    sqs = await shop.aws.client("sqs")
    queue = shop_settings.names.order_queue
    url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
    await sqs.delete_queue(QueueUrl=url)

    placed = await place_order(
        shop, checkout_request([("croissant", 1)]), idempotency_key="q", cart_id=None
    )
    assert placed.status == 202
    async with shop.sessions() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.message_type == "order.placed")
        )
    assert row is not None and row.sent_at is None  # in the outbox, waiting for SQS

    await bootstrap(shop_settings)  # SQS is back
    relay = OutboxRelay(shop)

    async def relayed() -> bool:
        await relay.flush()
        async with shop.sessions() as session:
            message = await session.get(OutboxMessage, row.id)
        return message is not None and message.sent_at is not None

    await eventually(relayed, within=30, interval=0.5)
    received = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    bodies = [json.loads(message["Body"]) for message in received.get("Messages", [])]
    assert [body["order_id"] for body in bodies] == [placed.body["order_id"]]


async def test_a_slow_request_whose_key_was_taken_over_by_a_retry_saves_no_second_order(
    shop: Resources, database_url: str
) -> None:
    started = datetime.now(UTC)
    holder = await lock_orders(database_url)
    try:
        slow = asyncio.create_task(
            place_order(
                shop,
                checkout_request([("bun", 2)]),
                idempotency_key="taken-over",
                cart_id=None,
                now=started,
            )
        )

        async def reserved() -> bool:
            return await stock(shop, "bun") == (10, 2, 8)

        await eventually(reserved)
        await eventually(lambda: waiting_on_a_lock(holder))
        # The client gave up waiting and retried after the claim's lock time: a takeover.
        retry = asyncio.create_task(
            place_order(
                shop,
                checkout_request([("bun", 2)]),
                idempotency_key="taken-over",
                cart_id=None,
                now=started + timedelta(seconds=31),
            )
        )

        async def both_reserved() -> bool:
            return await stock(shop, "bun") == (10, 4, 6)

        await eventually(both_reserved)
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()

    accepted = await retry
    assert accepted.status == 202
    with pytest.raises(repository.IdempotencyInProgress):
        await slow  # its claim was taken: its order is rolled back, its stock released
    assert await counts(shop) == (1, 0)
    assert await stock(shop, "bun") == (10, 2, 8)
    replay = await place_order(
        shop, checkout_request([("bun", 2)]), idempotency_key="taken-over", cart_id=None
    )
    assert replay.replayed and replay.body["order_id"] == accepted.body["order_id"]


async def test_a_request_whose_claim_was_taken_over_leaves_the_key_to_the_retry(
    shop: Resources,
) -> None:
    # The order the test above cannot force: the slow request fails first and frees "its"
    # key while the retry that took it over is still saving.
    claim = {"scope": "orders", "key": "taken-over", "request_hash": "h", "ttl": timedelta(hours=1)}
    slow_claimed = datetime.now(UTC)
    retry_claimed = slow_claimed + timedelta(seconds=31)
    async with shop.sessions.begin() as session:
        assert await repository.claim_idempotency_key(session, now=slow_claimed, **claim) is None
    async with shop.sessions.begin() as session:
        assert await repository.claim_idempotency_key(session, now=retry_claimed, **claim) is None
    async with shop.sessions.begin() as session:
        await repository.release_idempotency_key(
            session, scope="orders", key="taken-over", claimed_at=slow_claimed
        )
    order_id = uuid.uuid4()
    async with shop.sessions.begin() as session:
        await repository.complete_idempotency_key(
            session,
            scope="orders",
            key="taken-over",
            status=202,
            body={"order_id": str(order_id)},
            order_id=order_id,
            claimed_at=retry_claimed,
        )
    async with shop.sessions.begin() as session:
        replay = await repository.claim_idempotency_key(session, now=retry_claimed, **claim)
    assert replay is not None and replay.body == {"order_id": str(order_id)}


@pytest.mark.parametrize(
    "driver_error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
    ],
)
async def test_a_database_starting_up_or_shutting_down_is_a_503_not_a_500(
    driver_error: Exception,
) -> None:
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
    from sqlalchemy.exc import DBAPIError

    from pickup.core.errors import ServiceUnavailable

    wrapped = DBAPIError("SELECT 1", None, AsyncAdapt_asyncpg_dbapi.Error("", driver_error))
    with pytest.raises(ServiceUnavailable):
        async with repository.database_errors("try again"):
            raise wrapped
    syntax = asyncpg.exceptions.PostgresSyntaxError("syntax error")
    bug = DBAPIError("SELECT 1", None, AsyncAdapt_asyncpg_dbapi.Error("", syntax))
    with pytest.raises(DBAPIError):
        async with repository.database_errors("try again"):
            raise bug
