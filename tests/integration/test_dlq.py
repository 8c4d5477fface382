"""Dead-letter tooling: a poison message lands in the DLQ after N receives, `pickup dlq`
lists and shows it, and redrive brings it back (and is safe to repeat)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from click.testing import CliRunner

from pickup.cli.main import main
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.process import order_consumer
from tests.helpers import pickup_environment
from tests.integration.test_worker import (
    FAST,
    consuming,
    eventually,
    open_shop,
    pipeline_settings,
    queue_depth,
    queue_url,
)


@pytest.fixture
async def shop(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any
) -> AsyncIterator[Resources]:
    async with open_shop(pipeline_settings(make_settings)) as shop:
        yield shop


async def pickup(settings: Settings, *args: str) -> str:
    """Run ``pickup ARGS`` with ``settings`` as its environment; its output."""
    env = pickup_environment(settings, PICKUP_ENV="test")
    result = await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_poison_message_is_dead_lettered_and_redrive_brings_it_back(
    shop: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    settings, names = shop.settings, shop.settings.names
    sqs = await shop.aws.client("sqs")
    poison = {"type": "order.placed", "version": 42, "order_id": "0000"}
    await sqs.send_message(
        QueueUrl=await queue_url(shop, names.order_queue),
        MessageBody=json.dumps(poison),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": "order.placed"}},
    )
    async with consuming(order_consumer(shop, **FAST)):

        async def dead_lettered() -> bool:
            return await queue_depth(shop, names.order_dlq) == 1

        await eventually(dead_lettered, within=30)
    handled = [r for r in caplog.records if r.getMessage().startswith("queue.poison_message")]
    assert len(handled) == settings.sqs_max_receive_count  # then SQS moved it
    assert "unsupported order.placed version 42" in handled[0].getMessage()

    listed = await pickup(settings, "dlq", "list")
    assert names.order_dlq not in listed  # rows name the work queues
    line = next(row for row in listed.splitlines() if row.startswith(names.order_queue))
    assert line.split()[1:] == ["0", "0", "0", "1"]

    shown = await pickup(settings, "dlq", "show", "orders")
    assert "order.placed" in shown and "order_id=0000" in shown
    assert "received " in shown
    as_json = [
        json.loads(row)
        for row in (await pickup(settings, "dlq", "show", "orders", "--json")).splitlines()
    ]
    assert [json.loads(letter["body"]) for letter in as_json] == [poison]
    assert await queue_depth(shop, names.order_dlq) == 1  # looking leaves it there

    assert "moved 1 message back" in await pickup(settings, "dlq", "redrive", "orders")
    assert await queue_depth(shop, names.order_queue) == 1
    assert await queue_depth(shop, names.order_dlq) == 0
    assert "moved 0 messages back" in await pickup(settings, "dlq", "redrive", "orders")

    received = await sqs.receive_message(
        QueueUrl=await queue_url(shop, names.order_queue),
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    )
    [message] = received["Messages"]
    assert json.loads(message["Body"]) == poison
    assert message["MessageAttributes"]["event_type"]["StringValue"] == "order.placed"
    assert message["MessageAttributes"]["redrive_count"]["StringValue"] == "1"


async def test_purge_empties_a_dead_letter_queue(shop: Resources) -> None:
    names = shop.settings.names
    sqs = await shop.aws.client("sqs")
    for index in range(3):
        await sqs.send_message(
            QueueUrl=await queue_url(shop, names.notifications_dlq), MessageBody=f"dead {index}"
        )
    shown = await pickup(shop.settings, "dlq", "show", "notifications")
    assert shown.count("(unknown type)") == 3 and "dead 0" in shown
    output = await pickup(shop.settings, "dlq", "purge", "notifications", "--yes")
    assert names.notifications_dlq in output
    assert await queue_depth(shop, names.notifications_dlq) == 0


async def test_an_unknown_queue_is_refused_with_the_choices(shop: Resources) -> None:
    env = {
        "PICKUP_ENV": "test",
        "PICKUP_DATABASE_URL": "sqlite:///x",
        "PICKUP_REDIS_URL": "memory://x",
    }
    result = await asyncio.to_thread(CliRunner().invoke, main, ["dlq", "show", "payments"], env=env)
    assert result.exit_code == 2
    assert "unknown queue 'payments'" in result.output and "orders, notifications" in result.output
