"""The DynamoDB Stream consumer: every stock change in the ledger exactly once across
restarts, one alert per downward threshold crossing, menu cache and live events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import delete, select

from pickup.adapters.dynamodb import ChangeNote
from pickup.adapters.orm import InventoryLedgerEntry, OutboxMessage, StreamCheckpoint
from pickup.core.inventory import StockLine
from pickup.live import STAFF, stream_key
from pickup.menu.cache import GENERATION_KEY
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.repository import add_ledger_entry
from pickup.worker.stock_events import ledger_change_id
from pickup.worker.stream import StreamConsumer
from tests.integration.test_worker import open_shop, pipeline_settings, product


@pytest.fixture
async def shop(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any
) -> AsyncIterator[Resources]:
    async with open_shop(pipeline_settings(make_settings)) as shop:
        await shop.inventory.put_product(
            product("tart", 10, low_stock_threshold=5, critical_threshold=2),
            replace_inventory=True,
        )
        yield shop


async def drain(consumer: StreamConsumer) -> int:
    total = 0
    while processed := await consumer.poll_once():
        total += processed
    return total


async def ledger(resources: Resources, product_id: str | None = None) -> list[InventoryLedgerEntry]:
    async with resources.sessions() as session:
        query = select(InventoryLedgerEntry).order_by(InventoryLedgerEntry.id)
        if product_id:
            query = query.where(InventoryLedgerEntry.product_id == product_id)
        return list(await session.scalars(query))


async def alerts(resources: Resources) -> list[dict[str, Any]]:
    async with resources.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage.payload)
            .where(OutboxMessage.message_type.like("inventory.%"))
            .order_by(OutboxMessage.id)
        )
        return list(rows)


async def reserve(resources: Resources, product_id: str, quantity: int, order: str) -> None:
    await resources.inventory.reserve([StockLine.of(product_id, quantity)], order_id=order)


async def test_each_stock_change_is_in_the_ledger_once_across_restarts(shop: Resources) -> None:
    first = StreamConsumer(shop)
    assert await drain(first) >= 3  # the three products were written
    created = len(await ledger(shop, "tart"))
    await reserve(shop, "tart", 2, "order-1")
    await shop.inventory.release([StockLine.of("tart", 2)], order_id="order-1")
    await shop.inventory.restock("tart", 5)
    await shop.inventory.adjust("tart", -1)
    await reserve(shop, "tart", 1, "order-2")
    await shop.inventory.confirm([StockLine.of("tart", 1)], order_id="order-2")
    await shop.inventory.set_thresholds("tart", 4, 1)  # moves no stock: no ledger row
    assert await drain(first) == 7

    rows = await ledger(shop, "tart")
    assert {row.kind for row in rows[:created]} == {"set"}
    assert [row.kind for row in rows[created:]] == [
        "reserve",
        "release",
        "restock",
        "adjust",
        "reserve",
        "confirm",
    ]
    assert [(row.on_hand_after, row.reserved_after, row.available_after) for row in rows][-1] == (
        13,
        0,
        13,
    )
    assert rows[created].delta_available == -2 and rows[created].delta_reserved == 2

    # A restart resumes after its checkpoint: nothing is read twice, nothing skipped.
    await shop.inventory.restock("tart", 1)
    restarted = StreamConsumer(shop)
    assert await drain(restarted) == 1
    assert len(await ledger(shop, "tart")) == created + 7

    # Even a lost checkpoint (a replay of the whole stream) writes no row twice.
    async with shop.sessions.begin() as session:
        await session.execute(delete(StreamCheckpoint))
    replayed = StreamConsumer(shop)
    assert await drain(replayed) >= 11
    assert len(await ledger(shop, "tart")) == created + 7
    assert len({row.source_event_id for row in await ledger(shop)}) == len(await ledger(shop))


async def test_one_alert_per_downward_threshold_crossing(shop: Resources) -> None:
    consumer = StreamConsumer(shop)
    await drain(consumer)
    # tart: 10 available, low at 5, critical at 2.
    for step, quantity in enumerate([4, 1, 1, 1, 1, 1]):  # 6, 5, 4, 3, 2, 1
        await reserve(shop, "tart", quantity, f"order-{step}")
    await drain(consumer)
    assert [alert["level"] for alert in await alerts(shop)] == ["low", "critical"]

    await reserve(shop, "tart", 1, "order-last")  # 1 -> 0
    await drain(consumer)
    await shop.inventory.restock("tart", 20)  # back up: no alert
    await drain(consumer)
    await reserve(shop, "tart", 17, "order-big")  # 20 -> 3: one crossing, one alert
    await drain(consumer)

    found = await alerts(shop)
    assert [alert["level"] for alert in found] == ["low", "critical", "out", "low"]
    assert found[0] == found[0] | {
        "type": "inventory.low_stock",
        "product_id": "tart",
        "product_name": "Tart",
        "available": 5,
        "low_stock_threshold": 5,
        "critical_threshold": 2,
    }
    async with shop.sessions() as session:
        sent = await session.scalars(
            select(OutboxMessage.sent_at).where(OutboxMessage.message_type.like("inventory.%"))
        )
        assert all(sent_at is not None for sent_at in sent)  # published to inventory-alerts

    # Replaying the stream raises no alert twice.
    async with shop.sessions.begin() as session:
        await session.execute(delete(StreamCheckpoint))
    await drain(StreamConsumer(shop))
    assert len(await alerts(shop)) == 4


async def test_stock_changes_invalidate_the_menu_and_are_pushed_live(
    shop: Resources, redis: Any
) -> None:
    consumer = StreamConsumer(shop)
    await drain(consumer)
    generation = int(await redis.get(GENERATION_KEY) or 0)
    await reserve(shop, "tart", 6, "order-live")
    await drain(consumer)

    assert int(await redis.get(GENERATION_KEY) or 0) > generation
    events = await redis.xrange(stream_key(STAFF))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for _, fields in events:
        by_type.setdefault(fields["type"], []).append(json.loads(fields["data"]))
    assert by_type["stock.changed"][-1] == {
        "product_id": "tart",
        "on_hand": 10,
        "reserved": 6,
        "available": 4,
        "stock_status": "low_stock",
        "alert_level": "low",
    }
    assert [alert["level"] for alert in by_type["stock.alert"]] == ["low"]


async def test_a_change_made_by_hand_is_in_the_ledger_once_with_its_reason(
    shop: Resources,
) -> None:
    consumer = StreamConsumer(shop)
    await drain(consumer)  # the product's creation
    first, second = ChangeNote("c1", "delivery from the mill"), ChangeNote("c2", "dropped tray")
    await shop.inventory.restock("tart", 4, change=first)
    await shop.inventory.adjust("tart", -2, change=second)
    # The API writes its own row for the second change before the consumer sees it.
    async with shop.sessions.begin() as session:
        await add_ledger_entry(
            session,
            {
                "product_id": "tart",
                "kind": "adjust",
                "delta_on_hand": -2,
                "delta_available": -2,
                "on_hand_after": 12,
                "reserved_after": 0,
                "available_after": 12,
                "reason": "dropped tray",
                "source_event_id": ledger_change_id("c2"),
            },
        )
    await drain(consumer)

    rows = [row for row in await ledger(shop, "tart") if row.kind in {"restock", "adjust"}]
    assert [(row.kind, row.reason, row.source_event_id) for row in rows] == [
        ("adjust", "dropped tray", "change:c2"),
        ("restock", "delivery from the mill", "change:c1"),
    ]
