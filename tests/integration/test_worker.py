"""The order worker against real PostgreSQL, Redis and moto: placed orders are confirmed with
an estimate, their email is sent, and a message delivered twice changes nothing twice.

The helpers here (a shop with products, placing orders, running consumers, polling) are
shared by the other pipeline tests.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pickup.adapters.orm import NotificationLog, Order, OrderStatusHistory, OutboxMessage
from pickup.core.inventory import ProductWithInventory
from pickup.core.orders import OrderStatus
from pickup.messaging.consumer import SQSConsumer
from pickup.notifier.process import notification_consumer
from pickup.orders.schemas import CheckoutRequest
from pickup.orders.service import place_order
from pickup.provisioning import bootstrap
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.orders import Confirmation, confirm_order
from pickup.worker.process import order_consumer

ALWAYS_OPEN = "mon-sun 00:00-24:00"
FAST = {"wait_time_seconds": 1, "backoff_base_seconds": 0.2, "shutdown_timeout_seconds": 10}


def product(product_id: str, stock: int, price: int = 300, **extra: Any) -> ProductWithInventory:
    return ProductWithInventory(
        id=product_id,
        name=product_id.replace("-", " ").title(),
        category="Pastries",
        price_cents=price,
        on_hand=stock,
        reserved=0,
        available=stock,
        max_per_order=20,
        **extra,
    )


def pipeline_settings(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "opening_hours": ALWAYS_OPEN,
        "lead_minutes": 10,
        "slot_capacity": 1000,
        "sqs_visibility_timeout_seconds": 2,
        "sqs_max_receive_count": 3,
        "prep_minutes_per_item": 5,
        "staff_capacity": 1,
    }
    values.update(overrides)
    return make_settings(**values)


@asynccontextmanager
async def open_shop(settings: Settings) -> AsyncIterator[Resources]:
    await bootstrap(settings)
    async with Resources.open(settings) as resources:
        for item in (product("croissant", 30, 280), product("bun", 10, 330)):
            await resources.inventory.put_product(item, replace_inventory=True)
        yield resources


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(make_settings)


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    async with open_shop(shop_settings) as resources:
        yield resources


async def place(
    resources: Resources,
    *,
    email: str = "ada@example.com",
    phone: str | None = None,
    sms_opt_in: bool = False,
    items: list[tuple[str, int]] | None = None,
    pickup_time: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    customer: dict[str, Any] = {"name": "Ada Lovelace", "email": email}
    if phone:
        customer.update(phone=phone, sms_opt_in=sms_opt_in)
    request = CheckoutRequest.model_validate(
        {
            "customer": customer,
            "items": [
                {"product_id": pid, "quantity": qty}
                for pid, qty in (items or [("croissant", 2), ("bun", 1)])
            ],
            "pickup_time": pickup_time,
        }
    )
    result = await place_order(
        resources, request, idempotency_key=str(uuid.uuid4()), cart_id=None, now=now
    )
    assert result.status == 202, result.body
    return result.body


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within: float = 15.0, interval: float = 0.1
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within}s: {check.__name__} -> {result!r}")
        await asyncio.sleep(interval)


@asynccontextmanager
async def consuming(*consumers: SQSConsumer) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(consumer.run()) for consumer in consumers]
    try:
        yield
    finally:
        for consumer in consumers:
            consumer.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


async def order_status(resources: Resources, order_id: str) -> OrderStatus:
    async with resources.sessions() as session:
        order = await session.get(Order, uuid.UUID(order_id))
        assert order is not None
        return order.status


async def load_order(resources: Resources, order_id: str) -> Order:
    async with resources.sessions() as session:
        order = await session.get(Order, uuid.UUID(order_id))
        assert order is not None
        return order


async def history(resources: Resources, order_id: str) -> list[OrderStatus]:
    async with resources.sessions() as session:
        rows = await session.scalars(
            select(OrderStatusHistory.to_status)
            .where(OrderStatusHistory.order_id == uuid.UUID(order_id))
            .order_by(OrderStatusHistory.id)
        )
        return list(rows)


async def log_rows(resources: Resources, **where: Any) -> list[NotificationLog]:
    async with resources.sessions() as session:
        query = select(NotificationLog).order_by(NotificationLog.id)
        for column, value in where.items():
            query = query.where(getattr(NotificationLog, column) == value)
        return list(await session.scalars(query))


async def outbox_types(resources: Resources, prefix: str = "") -> list[str]:
    async with resources.sessions() as session:
        rows = await session.scalars(select(OutboxMessage.message_type).order_by(OutboxMessage.id))
        return [row for row in rows if row.startswith(prefix)]


async def queue_url(resources: Resources, name: str) -> str:
    sqs = await resources.aws.client("sqs")
    return str((await sqs.get_queue_url(QueueName=name))["QueueUrl"])


async def queue_depth(resources: Resources, name: str) -> int:
    """Messages in ``name``, visible or in flight."""
    sqs = await resources.aws.client("sqs")
    attributes = (
        await sqs.get_queue_attributes(
            QueueUrl=await queue_url(resources, name),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


async def sent_emails(endpoint: str, to: str) -> list[dict[str, Any]]:
    """The emails moto's SES accepted for ``to`` (moto keeps the HTML body only)."""
    async with httpx.AsyncClient(timeout=30) as http:
        data = (await http.get(f"{endpoint}/moto-api/data.json")).json()
    messages = data.get("ses", {}).get("Message", [])
    return [message for message in messages if to in json.dumps(message.get("destinations", {}))]


# --- Tests ----------------------------------------------------------------------------------


async def test_a_placed_order_is_confirmed_and_its_email_sent_with_the_right_content(
    shop: Resources, services: Any
) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    placed = await place(shop, email=email)
    assert placed["status"] == "pending"

    worker = order_consumer(shop, **FAST)
    notifier = notification_consumer(shop, **FAST)
    async with consuming(worker, notifier):

        async def confirmed_and_emailed() -> bool:
            sent = await log_rows(shop, channel="email", status="sent")
            return await order_status(shop, placed["order_id"]) is OrderStatus.CONFIRMED and bool(
                sent
            )

        await eventually(confirmed_and_emailed)

    order = await load_order(shop, placed["order_id"])
    assert order.estimated_ready_at is not None
    assert order.estimated_ready_at >= order.pickup_at
    assert await history(shop, placed["order_id"]) == [OrderStatus.PENDING, OrderStatus.CONFIRMED]
    assert "order.confirmed" in await outbox_types(shop, "order.")

    [row] = await log_rows(shop, channel="email")
    assert (row.recipient, row.template, row.status) == (email, "order_confirmed", "sent")
    assert row.dedupe_key == f"order.confirmed:{placed['order_id']}:email"

    [mail] = await sent_emails(services.aws_endpoint, email)
    assert mail["source"] == shop.settings.ses_sender
    assert mail["subject"].startswith(f"Order {placed['code']} confirmed")
    assert placed["code"] in mail["body"]
    assert "2 &times; Croissant" in mail["body"]
    assert "£8.90" in mail["body"]  # 2 x 2.80 + 3.30
    assert f"/orders/{placed['order_id']}/status" in mail["body"]


async def test_a_message_delivered_twice_confirms_once_and_emails_once(shop: Resources) -> None:
    placed = await place(shop)
    sqs = await shop.aws.client("sqs")
    body = json.dumps(
        {"type": "order.placed", "version": 1, "order_id": placed["order_id"], "lines": []}
    )
    url = await queue_url(shop, shop.settings.names.order_queue)
    for _ in range(2):  # the same order.placed twice more, as at-least-once delivery may
        await sqs.send_message(QueueUrl=url, MessageBody=body)

    worker = order_consumer(shop, **FAST)
    notifier = notification_consumer(shop, **FAST)
    async with consuming(worker, notifier):

        async def all_handled() -> bool:
            queues = shop.settings.names
            depths = [
                await queue_depth(shop, queues.order_queue),
                await queue_depth(shop, queues.notifications_queue),
            ]
            return depths == [0, 0] and bool(await log_rows(shop, status="sent"))

        await eventually(all_handled)
        # A duplicate of the order.confirmed event reaches the notifier too.
        sns = await shop.aws.client("sns")
        topics = (await sns.list_topics())["Topics"]
        arn = next(
            t["TopicArn"]
            for t in topics
            if t["TopicArn"].endswith(":" + shop.settings.names.order_events_topic)
        )
        async with shop.sessions() as session:
            event = await session.scalar(
                select(OutboxMessage.payload).where(OutboxMessage.message_type == "order.confirmed")
            )
        await sns.publish(TopicArn=arn, Message=json.dumps(event))

        async def notifications_drained() -> bool:
            return await queue_depth(shop, shop.settings.names.notifications_queue) == 0

        await asyncio.sleep(0.5)
        await eventually(notifications_drained)

    assert await history(shop, placed["order_id"]) == [OrderStatus.PENDING, OrderStatus.CONFIRMED]
    assert await outbox_types(shop, "order.confirmed") == ["order.confirmed"]
    assert [(row.channel, row.status) for row in await log_rows(shop)] == [("email", "sent")]


async def test_confirming_an_order_that_moved_on_changes_nothing(shop: Resources) -> None:
    placed = await place(shop)
    order_id = uuid.UUID(placed["order_id"])
    assert await confirm_order(shop, order_id) is Confirmation.CONFIRMED
    assert await confirm_order(shop, order_id) is Confirmation.ALREADY_DONE
    assert await history(shop, placed["order_id"]) == [OrderStatus.PENDING, OrderStatus.CONFIRMED]


async def test_the_estimate_counts_the_kitchen_queue_ahead(shop: Resources) -> None:
    # prep 5 minutes an item, one cook: each order of 3 items adds 15 minutes.
    now = datetime.now(UTC)
    soon = now + timedelta(minutes=15)
    first = await place(shop, pickup_time=soon, now=now)
    second = await place(shop, pickup_time=soon, now=now)
    await confirm_order(shop, uuid.UUID(first["order_id"]), now=now)
    await confirm_order(shop, uuid.UUID(second["order_id"]), now=now)

    first_ready = (await load_order(shop, first["order_id"])).estimated_ready_at
    second_ready = (await load_order(shop, second["order_id"])).estimated_ready_at
    assert first_ready is not None and second_ready is not None
    assert soon <= first_ready < soon + timedelta(minutes=1)  # nothing ahead: ready on time
    assert second_ready >= now + timedelta(minutes=30)  # 15 ahead of it + its own 15


async def test_malformed_and_unknown_messages_go_to_the_dlq_without_blocking_the_queue(
    shop: Resources,
) -> None:
    names = shop.settings.names
    sqs = await shop.aws.client("sqs")
    url = await queue_url(shop, names.order_queue)
    bad = [
        "not json at all",
        json.dumps(["a", "list"]),
        json.dumps({"type": "order.placed", "version": 99, "order_id": str(uuid.uuid4())}),
        json.dumps({"type": "order.teleported", "version": 1, "order_id": str(uuid.uuid4())}),
        json.dumps({"type": "order.placed", "version": 1, "order_id": "nope"}),
        json.dumps({"type": "order.placed", "version": 1, "order_id": str(uuid.uuid4())}),
    ]
    for body in bad:
        await sqs.send_message(QueueUrl=url, MessageBody=body)
    placed = await place(shop)

    async with consuming(order_consumer(shop, **FAST)):

        async def all_dead_lettered() -> bool:
            return await queue_depth(shop, names.order_dlq) == len(bad)

        await eventually(all_dead_lettered, within=30)
    assert await order_status(shop, placed["order_id"]) is OrderStatus.CONFIRMED
    assert await queue_depth(shop, names.order_queue) == 0
