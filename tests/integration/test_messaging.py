"""The SQS consumer and the Lambda adapter against moto: outcomes, slow handlers, graceful
stop in the middle of a batch (in-process and with SIGTERM on `pickup worker`), and partial
batch failures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from pickup.adapters.orm import OrderStatusHistory
from pickup.core.orders import OrderStatus
from pickup.messaging.consumer import ConsumerConfig, Message, Poison, Retry, SQSConsumer
from pickup.messaging.lambda_adapter import LambdaAdapter
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.orders import order_handler
from tests.helpers import free_port, pickup_environment
from tests.integration.test_worker import (
    consuming,
    eventually,
    history,
    open_shop,
    pipeline_settings,
    place,
    queue_depth,
    queue_url,
)


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(make_settings)


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    async with open_shop(shop_settings) as resources:
        yield resources


async def send(resources: Resources, queue: str, bodies: list[str]) -> None:
    sqs = await resources.aws.client("sqs")
    url = await queue_url(resources, queue)
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(index), "MessageBody": body}
            for index, body in enumerate(bodies[start : start + 10])
        ]
        await sqs.send_message_batch(QueueUrl=url, Entries=entries)


def config(queue: str, **overrides: Any) -> ConsumerConfig:
    values: dict[str, Any] = {
        "queue_name": queue,
        "label": "test",
        "concurrency": 4,
        "wait_time_seconds": 1,
        "backoff_base_seconds": 0.2,
        "shutdown_timeout_seconds": 10,
    }
    values.update(overrides)
    return ConsumerConfig(**values)


async def test_each_outcome_acks_retries_or_dead_letters(shop: Resources) -> None:
    names = shop.settings.names
    seen: dict[str, int] = {}

    async def handler(message: Message) -> None:
        body = message.json()
        seen[body["kind"]] = seen.get(body["kind"], 0) + 1
        if body["kind"] == "flaky" and message.receive_count < 2:
            raise Retry("not yet", delay=0)
        if body["kind"] == "broken":
            raise RuntimeError("a bug")
        if body["kind"] == "poison":
            raise Poison("never works")

    kinds = ["fine", "flaky", "broken", "poison"]
    await send(shop, names.order_queue, [json.dumps({"kind": kind}) for kind in kinds])
    async with consuming(SQSConsumer(shop.aws, handler, config(names.order_queue))):

        async def settled() -> bool:
            return await queue_depth(shop, names.order_dlq) == 2

        await eventually(settled, within=30)
    assert seen["fine"] == 1
    assert seen["flaky"] == 2  # retried once, then acknowledged
    assert seen["broken"] == seen["poison"] == shop.settings.sqs_max_receive_count
    assert await queue_depth(shop, names.order_queue) == 0


async def test_a_slow_handler_keeps_its_message_invisible(shop: Resources) -> None:
    names = shop.settings.names  # the queue's visibility timeout is 2 s
    calls: list[str] = []

    async def slow(message: Message) -> None:
        calls.append(message.id)
        await asyncio.sleep(5)

    await send(shop, names.order_queue, ["slow"])
    consumer = SQSConsumer(shop.aws, slow, config(names.order_queue))
    async with consuming(consumer):

        async def handled() -> bool:
            return await queue_depth(shop, names.order_queue) == 0

        await eventually(handled, within=20, interval=0.25)
    assert len(calls) == 1  # never handed out a second time while being handled


async def test_stopping_in_the_middle_of_a_batch_finishes_it_and_loses_nothing(
    shop: Resources,
) -> None:
    names = shop.settings.names
    started: list[str] = []
    finished: list[str] = []

    async def handler(message: Message) -> None:
        started.append(message.body)
        await asyncio.sleep(1.0)
        finished.append(message.body)

    bodies = [f"message-{index}" for index in range(12)]
    await send(shop, names.order_queue, bodies)
    consumer = SQSConsumer(shop.aws, handler, config(names.order_queue, concurrency=4))
    task = asyncio.create_task(consumer.run())
    await eventually(lambda: asyncio.sleep(0, len(started) >= 2), within=15, interval=0.05)
    consumer.stop()  # what SIGTERM does
    await asyncio.wait_for(task, timeout=15)

    assert started and sorted(started) == sorted(finished)  # in flight: all finished
    assert len(finished) < len(bodies)
    # Nothing finished is left in the queue; nothing unfinished was lost.
    second = SQSConsumer(shop.aws, handler, config(names.order_queue, concurrency=10))
    async with consuming(second):

        async def all_done() -> bool:
            return len(set(finished)) == len(bodies)

        await eventually(all_done, within=30)
    assert sorted(set(finished)) == sorted(bodies)
    assert len(finished) == len(bodies)  # each handled exactly once here


async def test_sigterm_stops_pickup_worker_without_losing_a_message(shop: Resources) -> None:
    names = shop.settings.names
    orders = [await place(shop, items=[("croissant", 1)]) for _ in range(8)]
    port = free_port()
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pickup.cli.main",
        "worker",
        env={
            **{key: value for key, value in os.environ.items() if not key.startswith("PICKUP_")},
            **pickup_environment(
                shop.settings,
                PICKUP_OPENING_HOURS=shop.settings.opening_hours,
                PICKUP_HEALTH_PORT=str(port),
                PICKUP_WORKER_CONCURRENCY="3",
            ),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def serving() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(serving, within=30)
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["order-consumer"]["ok"]

            async def some_confirmed() -> bool:
                async with shop.sessions() as session:
                    count = await session.scalar(
                        select(func.count())
                        .select_from(OrderStatusHistory)
                        .where(OrderStatusHistory.to_status == OrderStatus.CONFIRMED)
                    )
                return bool(count)

            await eventually(some_confirmed, within=30)
            metrics = await http.get("/metrics")
            assert "pickup_queue_messages_total" in metrics.text
        worker.send_signal(signal.SIGTERM)
        raw, _ = await asyncio.wait_for(worker.communicate(), timeout=40)
        output = raw.decode()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert worker.returncode == 0, output
    assert "Traceback" not in output
    assert "worker.stopped" in output

    # Whatever it had not finished is still queued: a second worker completes it.
    async with consuming(
        SQSConsumer(shop.aws, order_handler(shop), config(names.order_queue, concurrency=8))
    ):

        async def all_confirmed() -> bool:
            for order in orders:
                if (await history(shop, order["order_id"]))[-1] is not OrderStatus.CONFIRMED:
                    return False
            return True

        await eventually(all_confirmed, within=30)
    for order in orders:
        assert await history(shop, order["order_id"]) == [
            OrderStatus.PENDING,
            OrderStatus.CONFIRMED,
        ]


def lambda_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {"event_type": {"stringValue": "order.placed", "dataType": "String"}},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
    }


async def test_the_lambda_handler_processes_a_batch_and_reports_partial_failures(
    shop: Resources,
) -> None:
    placed = [await place(shop) for _ in range(2)]
    good = [
        lambda_record(
            json.dumps({"type": "order.placed", "version": 1, "order_id": order["order_id"]})
        )
        for order in placed
    ]
    bad = [
        lambda_record("not json", "bad-1"),
        lambda_record(json.dumps({"type": "order.placed", "version": 9}), "bad-2"),
    ]
    event = {"Records": [good[0], bad[0], good[1], bad[1], good[0]]}  # good[0] twice
    adapter = LambdaAdapter(order_handler, settings=shop.settings)
    try:
        result = await asyncio.to_thread(adapter, event, None)
        again = await asyncio.to_thread(adapter, {"Records": good}, None)  # a warm invocation
    finally:
        await asyncio.to_thread(adapter.close)

    assert result == {
        "batchItemFailures": [{"itemIdentifier": "bad-1"}, {"itemIdentifier": "bad-2"}]
    }
    assert again == {"batchItemFailures": []}
    for order in placed:
        assert await history(shop, order["order_id"]) == [
            OrderStatus.PENDING,
            OrderStatus.CONFIRMED,
        ]
