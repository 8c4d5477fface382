"""The notifier against real PostgreSQL, Redis and moto: templates, channels, opt-in, the
notification log, deduplication, retries into the DLQ and the development outbox."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from pickup.adapters.orm import Order, OutboxMessage
from pickup.core.orders import Actor, OrderStatus
from pickup.messaging.consumer import Message, Poison, Retry
from pickup.notifier import dev_outbox
from pickup.notifier.handler import notification_handler
from pickup.notifier.process import notification_consumer
from pickup.orders.transitions import change_status
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.orders import confirm_order
from tests.integration.test_worker import (
    FAST,
    consuming,
    eventually,
    log_rows,
    open_shop,
    pipeline_settings,
    place,
    queue_depth,
)


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(
        make_settings,
        staff_alert_emails=["kitchen@shop.example", "owner@shop.example"],
        staff_alert_phones=["+447700900999"],
    )


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    async with open_shop(shop_settings) as resources:
        yield resources


def as_message(payload: dict[str, Any], receive_count: int = 1) -> Message:
    return Message(
        id=str(uuid.uuid4()),
        body=json.dumps(payload),
        receipt_handle="test",
        receive_count=receive_count,
    )


async def event(resources: Resources, order_id: str, message_type: str) -> dict[str, Any]:
    async with resources.sessions() as session:
        payload = await session.scalar(
            select(OutboxMessage.payload).where(
                OutboxMessage.message_type == message_type,
                OutboxMessage.payload["order_id"].as_string() == order_id,
            )
        )
    assert payload is not None, f"no {message_type} event for {order_id}"
    return payload


async def confirmed_event(resources: Resources, **order: Any) -> tuple[dict[str, Any], Any]:
    placed = await place(resources, **order)
    await confirm_order(resources, uuid.UUID(placed["order_id"]))
    return placed, await event(resources, placed["order_id"], "order.confirmed")


async def test_customers_who_opted_in_also_get_a_text_and_others_only_email(
    shop: Resources,
) -> None:
    handle = notification_handler(shop)
    texted, texted_event = await confirmed_event(
        shop, email="sms@example.com", phone="+447700900123", sms_opt_in=True
    )
    emailed, emailed_event = await confirmed_event(
        shop, email="nosms@example.com", phone="+447700900124", sms_opt_in=False
    )
    await handle(as_message(texted_event))
    await handle(as_message(emailed_event))

    texted_rows = await log_rows(shop, order_id=uuid.UUID(texted["order_id"]))
    assert sorted((row.channel, row.recipient, row.status) for row in texted_rows) == [
        ("email", "sms@example.com", "sent"),
        ("sms", "+447700900123", "sent"),
    ]
    emailed_rows = await log_rows(shop, order_id=uuid.UUID(emailed["order_id"]))
    assert [(row.channel, row.status) for row in emailed_rows] == [("email", "sent")]
    assert all(row.provider_message_id for row in texted_rows + emailed_rows)


async def test_ready_is_texted_to_those_who_opted_in_and_emailed_to_the_rest(
    shop: Resources,
) -> None:
    handle = notification_handler(shop)
    for opt_in, phone in ((True, "+447700900125"), (False, None)):
        placed = await place(shop, phone=phone, sms_opt_in=opt_in)
        order_id = uuid.UUID(placed["order_id"])
        await confirm_order(shop, order_id)
        for status in (OrderStatus.PREPARING, OrderStatus.READY):
            await change_status(shop, order_id, status, actor=Actor.STAFF)
        for message_type in ("order.preparing", "order.ready"):
            await handle(as_message(await event(shop, placed["order_id"], message_type)))
        rows = await log_rows(shop, order_id=order_id, template="order_ready")
        assert [row.channel for row in rows] == (["sms"] if opt_in else ["email"])


async def test_a_failed_text_falls_back_to_email(shop: Resources) -> None:
    handle = notification_handler(shop)
    placed = await place(shop, phone="+447700900126", sms_opt_in=True)
    order_id = uuid.UUID(placed["order_id"])
    async with shop.sessions.begin() as session:  # a number the SMS provider refuses
        await session.execute(
            update(Order).where(Order.id == order_id).values(customer_phone="not-a-number")
        )
    await confirm_order(shop, order_id)
    for status in (OrderStatus.PREPARING, OrderStatus.READY):
        await change_status(shop, order_id, status, actor=Actor.STAFF)
    ready = await event(shop, placed["order_id"], "order.ready")

    await handle(as_message(ready))
    await handle(as_message(ready, receive_count=2))  # delivered again: nothing more is sent

    rows = await log_rows(shop, order_id=order_id, template="order_ready")
    assert [(row.channel, row.status) for row in rows] == [("sms", "failed"), ("email", "sent")]
    assert rows[0].error and "InvalidParameter" in rows[0].error


async def test_staff_get_an_email_per_alert_and_a_text_only_for_critical_stock(
    shop: Resources,
) -> None:
    handle = notification_handler(shop)
    base = {
        "version": 1,
        "product_id": "tart",
        "product_name": "Tart",
        "available": 4,
        "on_hand": 6,
        "reserved": 2,
        "low_stock_threshold": 5,
        "critical_threshold": 2,
        "reorder_quantity": 24,
    }
    await handle(as_message(base | {"type": "inventory.low_stock", "alert_id": "a1"}))
    critical = base | {"type": "inventory.critical_stock", "alert_id": "a2", "available": 2}
    await handle(as_message(critical))
    await handle(as_message(critical))  # a duplicate delivery sends nothing more

    rows = await log_rows(shop, template="stock_alert")
    assert sorted((row.dedupe_key, row.status) for row in rows) == [
        ("inventory.alert:a1:email:kitchen@shop.example", "sent"),
        ("inventory.alert:a1:email:owner@shop.example", "sent"),
        ("inventory.alert:a2:email:kitchen@shop.example", "sent"),
        ("inventory.alert:a2:email:owner@shop.example", "sent"),
        ("inventory.alert:a2:sms:+447700900999", "sent"),
    ]


async def test_the_operators_alerts_reach_staff_and_the_resources_own_recipients(
    shop: Resources,
) -> None:
    handle = notification_handler(shop)
    alert = {
        "type": "inventory.threshold_crossed",
        "version": 1,
        "alert_id": "op-1",
        "product_id": "tart",
        "product_name": "Tart",
        "level": "Critical",
        "previous_level": "Low",
        "available": 1,
        "low_stock_threshold": 5,
        "critical_threshold": 2,
        "resource": "shop/tart",
        "notify": {"emails": ["baker@shop.example"], "phones": ["+447700900111"]},
    }
    await handle(as_message(alert))
    await handle(as_message(alert | {"alert_id": "op-2", "level": "Ok"}))  # recovery: quiet

    rows = await log_rows(shop, template="stock_alert")
    assert sorted(row.dedupe_key for row in rows) == [
        "inventory.alert:op-1:email:baker@shop.example",
        "inventory.alert:op-1:email:kitchen@shop.example",
        "inventory.alert:op-1:email:owner@shop.example",
        "inventory.alert:op-1:sms:+447700900111",
        "inventory.alert:op-1:sms:+447700900999",
    ]


async def test_malformed_and_unknown_events_are_poison_and_quiet_ones_are_ignored(
    shop: Resources,
) -> None:
    handle = notification_handler(shop)
    for body in (
        {"type": "order.teleported", "version": 1, "order_id": str(uuid.uuid4())},
        {"type": "inventory.low_stock", "version": 7, "alert_id": "x", "product_id": "p"},
        {"type": "order.confirmed", "version": 2, "order_id": str(uuid.uuid4())},
        {"type": "order.confirmed", "version": 1, "order_id": "not-a-uuid"},
        {"type": "inventory.low_stock", "version": 1},
    ):
        with pytest.raises(Poison):
            await handle(as_message(body))
    with pytest.raises(Poison):
        await handle(Message(id="x", body="{not json", receipt_handle="-"))
    await handle(as_message({"type": "order.preparing", "version": 1, "order_id": "anything"}))
    assert await log_rows(shop) == []


async def test_an_ses_failure_is_retried_logged_and_ends_in_the_dlq(
    shop: Resources, make_settings: Callable[..., Settings]
) -> None:
    _, confirmed = await confirmed_event(shop, email="bob@example.com")
    # The same deployment with a sender SES never verified: every send is rejected.
    unverified = pipeline_settings(
        make_settings, ses_sender=f"nobody@unverified-{uuid.uuid4().hex[:8]}.example"
    )
    names = shop.settings.names
    async with Resources.open(unverified) as failing:
        handle = notification_handler(failing)
        with pytest.raises(Retry, match="MessageRejected"):
            await handle(as_message(confirmed))
        async with consuming(notification_consumer(failing, **FAST)):

            async def dead_lettered() -> bool:
                return await queue_depth(shop, names.notifications_dlq) == 1

            await eventually(dead_lettered, within=30)

    rows = await log_rows(shop, channel="email")
    assert [row.status for row in rows] == ["failed"] * (1 + shop.settings.sqs_max_receive_count)
    assert [row.attempt for row in rows] == list(range(1, len(rows) + 1))
    assert all("MessageRejected" in (row.error or "") for row in rows)
    assert await queue_depth(shop, names.notifications_queue) == 0


async def test_the_dev_outbox_shows_what_was_sent_in_development_only(
    shop: Resources, make_settings: Callable[..., Settings], redis: Any
) -> None:
    development = pipeline_settings(make_settings, env="development")
    async with Resources.open(development) as dev:
        _, confirmed = await confirmed_event(
            dev, email="dev@example.com", phone="+447700900127", sms_opt_in=True
        )
        await notification_handler(dev)(as_message(confirmed))
        app = FastAPI()
        app.include_router(dev_outbox.router)
        app.state.resources = dev
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dev.test") as http:
            listed = (await http.get("/dev/outbox.json")).json()["messages"]
            page = await http.get("/dev/outbox")
    assert sorted(message["channel"] for message in listed) == ["email", "sms"]
    email = next(message for message in listed if message["channel"] == "email")
    assert email["to"] == "dev@example.com"
    assert email["subject"] in page.text
    assert "Follow your order live" in email["html"]
    assert page.status_code == 200 and "srcdoc=" in page.text

    app = FastAPI()
    app.include_router(dev_outbox.router)
    app.state.resources = shop  # the test environment: no outbox
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test.test") as http:
        assert (await http.get("/dev/outbox")).status_code == 404
