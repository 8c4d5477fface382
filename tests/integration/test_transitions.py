from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from pickup.adapters.orm import Order, OrderStatusHistory, OutboxMessage
from pickup.core.orders import Actor, InvalidTransition, OrderStatus, ReservationState
from pickup.orders import service
from pickup.orders.schemas import CheckoutRequest
from pickup.orders.transitions import StaleVersion, change_status
from pickup.provisioning import bootstrap
from pickup.runtime import Resources
from pickup.settings import Settings
from tests.helpers import product


@pytest.fixture
async def shop(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any
) -> AsyncIterator[Resources]:
    settings = make_settings(
        opening_hours="mon-sun 00:00-24:00",
        slot_capacity=1000,
        prep_minutes_per_item=30,
        staff_capacity=1,
    )
    await bootstrap(settings)
    async with Resources.open(settings) as resources:
        await resources.inventory.put_product(product("bun", 10), replace_inventory=True)
        yield resources


async def place(resources: Resources, quantity: int = 2) -> uuid.UUID:
    request = CheckoutRequest.model_validate(
        {
            "customer": {"name": "Grace", "email": "grace@example.com"},
            "items": [{"product_id": "bun", "quantity": quantity}],
        }
    )
    result = await service.place_order(
        resources, request, idempotency_key=str(uuid.uuid4()), cart_id=None
    )
    return uuid.UUID(result.body["order_id"])


async def levels(resources: Resources) -> tuple[int, int, int]:
    bun = await resources.inventory.get_product("bun", consistent_read=True)
    assert bun is not None
    return bun.on_hand, bun.reserved, bun.available


async def walk(resources: Resources, order_id: uuid.UUID, *statuses: OrderStatus) -> None:
    for status in statuses:
        actor = Actor.SYSTEM if status is OrderStatus.CONFIRMED else Actor.STAFF
        await change_status(resources, order_id, status, actor=actor, staff_user_id=None)


async def order_events(resources: Resources) -> list[dict[str, Any]]:
    """The order events the notifications queue received (SNS raw delivery)."""
    sqs = await resources.aws.client("sqs")
    url = (await sqs.get_queue_url(QueueName=resources.settings.names.notifications_queue))[
        "QueueUrl"
    ]
    events = []
    while True:
        received = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        if not received.get("Messages"):
            return events
        for message in received["Messages"]:
            events.append(json.loads(message["Body"]))
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


async def test_an_order_moves_through_its_life_and_pickup_takes_the_stock(
    shop: Resources,
) -> None:
    order_id = await place(shop)
    assert await levels(shop) == (10, 2, 8)

    await walk(
        shop,
        order_id,
        OrderStatus.CONFIRMED,
        OrderStatus.PREPARING,
        OrderStatus.READY,
        OrderStatus.PICKED_UP,
    )

    assert await levels(shop) == (8, 0, 8)
    async with shop.sessions() as session:
        history = (
            await session.scalars(
                select(OrderStatusHistory.to_status)
                .where(OrderStatusHistory.order_id == order_id)
                .order_by(OrderStatusHistory.id)
            )
        ).all()
    assert history == ["pending", "confirmed", "preparing", "ready", "picked_up"]
    events = await order_events(shop)
    assert [event["type"] for event in events] == [
        "order.confirmed",
        "order.preparing",
        "order.ready",
        "order.picked_up",
    ]
    assert events[-1]["from_status"] == "ready"
    assert "grace" not in json.dumps(events).lower()
    board = [entry["type"] for _, entry in await shop.redis.xrange("live:staff")]
    assert [kind for kind in board if kind != "order.estimate"] == ["order.placed"] + [
        "order.status"
    ] * 4
    customer = await shop.redis.xrange(f"live:order:{order_id}")
    assert "grace" not in json.dumps(customer).lower()


async def test_cancelling_releases_the_stock_exactly_once(shop: Resources) -> None:
    order_id = await place(shop)
    await walk(shop, order_id, OrderStatus.CONFIRMED)
    cancelled = await change_status(shop, order_id, OrderStatus.CANCELLED, actor=Actor.STAFF)
    assert cancelled.reservation_state == ReservationState.RELEASED
    assert await levels(shop) == (10, 0, 10)

    with pytest.raises(InvalidTransition) as raised:
        await change_status(shop, order_id, OrderStatus.CANCELLED, actor=Actor.STAFF)
    assert raised.value.allowed == []
    assert await levels(shop) == (10, 0, 10)


async def test_an_invalid_transition_lists_what_is_allowed_and_changes_nothing(
    shop: Resources,
) -> None:
    order_id = await place(shop)
    with pytest.raises(InvalidTransition) as raised:
        await change_status(shop, order_id, OrderStatus.READY, actor=Actor.STAFF)
    assert raised.value.extensions()["allowed"] == ["confirmed", "cancelled"]
    with pytest.raises(InvalidTransition):
        await change_status(shop, order_id, OrderStatus.EXPIRED, actor=Actor.STAFF)
    async with shop.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert count == 1  # only the order.placed message
    assert await levels(shop) == (10, 2, 8)


async def test_only_the_system_expires_and_expiry_releases_the_stock(shop: Resources) -> None:
    order_id = await place(shop, quantity=3)
    expired = await change_status(shop, order_id, OrderStatus.EXPIRED, actor=Actor.SYSTEM)
    assert expired.status == OrderStatus.EXPIRED
    assert await levels(shop) == (10, 0, 10)


async def test_a_stale_version_is_refused_with_the_current_state(shop: Resources) -> None:
    order_id = await place(shop)
    confirmed = await change_status(shop, order_id, OrderStatus.CONFIRMED, actor=Actor.SYSTEM)
    with pytest.raises(StaleVersion) as raised:
        await change_status(
            shop, order_id, OrderStatus.PREPARING, actor=Actor.STAFF, expected_version=1
        )
    assert raised.value.status == 412
    assert raised.value.extensions() == {
        "current_status": "confirmed",
        "current_version": confirmed.version,
    }


async def test_two_staff_members_racing_on_one_version_change_it_once(shop: Resources) -> None:
    order_id = await place(shop)
    confirmed = await change_status(shop, order_id, OrderStatus.CONFIRMED, actor=Actor.SYSTEM)

    async def attempt(status: OrderStatus) -> str:
        try:
            await change_status(
                shop, order_id, status, actor=Actor.STAFF, expected_version=confirmed.version
            )
        except (StaleVersion, InvalidTransition):
            return "refused"
        return "changed"

    outcomes = await asyncio.gather(attempt(OrderStatus.PREPARING), attempt(OrderStatus.CANCELLED))
    assert sorted(outcomes) == ["changed", "refused"]
    on_hand, reserved, available = await levels(shop)
    assert on_hand == reserved + available
    assert reserved in (0, 2)


async def test_an_unknown_order_cannot_change(shop: Resources) -> None:
    from pickup.orders.service import OrderNotFound

    with pytest.raises(OrderNotFound):
        await change_status(shop, uuid.uuid4(), OrderStatus.CONFIRMED, actor=Actor.SYSTEM)


async def test_estimates_move_up_when_an_order_leaves_the_kitchen(shop: Resources) -> None:
    orders = [await place(shop, quantity=1) for _ in range(3)]
    for order_id in orders:
        await change_status(shop, order_id, OrderStatus.CONFIRMED, actor=Actor.SYSTEM)

    async def estimates() -> list[tuple[Any, int]]:
        async with shop.sessions() as session:
            found = [await session.get(Order, order_id) for order_id in orders]
        return [(order.estimated_ready_at, order.version) for order in found if order]

    before = await estimates()
    # One cook, 30 minutes an item: the kitchen, not the pickup time, sets the estimates.
    assert before[0][0] < before[1][0] < before[2][0]
    await change_status(shop, orders[0], OrderStatus.CANCELLED, actor=Actor.STAFF)
    after = await estimates()

    assert after[1][0] < before[1][0] and after[2][0] < before[2][0]
    assert [version for _, version in after[1:]] == [version for _, version in before[1:]]
    pushed = await shop.redis.xrange(f"live:order:{orders[2]}")
    assert "order.estimate" in [entry["type"] for _, entry in pushed]
