"""Tracing against real PostgreSQL, Redis and the AWS emulator: one trace from the checkout
request through the order worker and the notifier to the SES call, and nothing at all when
tracing is off."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiobotocore.client import AioBaseClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from sqlalchemy import select
from wrapt import ObjectProxy

from pickup.adapters.orm import OutboxMessage
from pickup.core.orders import OrderStatus
from pickup.messaging.runner import Component, running
from pickup.notifier.process import notification_consumer
from pickup.observability import tracing
from pickup.outbox.relay import OutboxRelay, outbox_message
from pickup.settings import Settings
from pickup.worker.process import order_consumer
from tests.helpers import app_client, free_port, pickup_environment
from tests.integration.test_worker import (
    FAST,
    consuming,
    eventually,
    log_rows,
    open_shop,
    order_status,
    pipeline_settings,
    place,
    queue_url,
)

CHECKOUT = {
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "items": [{"product_id": "croissant", "quantity": 2}, {"product_id": "bun", "quantity": 1}],
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    tracing.shutdown_tracing()


def traced_settings(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    return pipeline_settings(make_settings, tracing_enabled=True, **overrides)


def by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in spans}


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """``span``'s parent, its parent's parent... as far as the exported spans go."""
    index, chain = by_id(spans), []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        chain.append(span)
    return chain


def one(spans: list[ReadableSpan], test: Callable[[ReadableSpan], bool]) -> ReadableSpan:
    found = [span for span in spans if test(span)]
    assert len(found) == 1, [span.name for span in found]
    return found[0]


async def test_one_trace_goes_from_the_checkout_through_the_worker_and_notifier_to_ses(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any, spans: InMemorySpanExporter
) -> None:
    settings = traced_settings(make_settings)
    assert tracing.configure_tracing(settings, "pickup-test", exporter=spans)
    # Handed to each instrumentation, never global (FastAPI would trace every app with it).
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    names = settings.names
    async with open_shop(settings) as shop:
        tracing.instrument_engine(shop.engine)  # as the worker's composition root does
        async with app_client(settings) as http:
            response = await http.post(
                "/api/orders", json=CHECKOUT, headers={"Idempotency-Key": str(uuid.uuid4())}
            )
        assert response.status_code == 202, response.text
        order_id = response.json()["order_id"]

        async with consuming(order_consumer(shop, **FAST), notification_consumer(shop, **FAST)):

            async def emailed() -> bool:
                return bool(await log_rows(shop, channel="email", status="sent"))

            await eventually(emailed)

    finished = list(spans.get_finished_spans())
    request = one(finished, lambda s: s.kind is SpanKind.SERVER and s.name == "POST /api/orders")
    trace_id = request.context.trace_id
    in_trace = [span for span in finished if span.context.trace_id == trace_id]

    placed = one(in_trace, lambda s: s.name == f"{names.order_queue} publish")
    worker = one(in_trace, lambda s: s.name == f"{names.order_queue} process")
    confirmed = one(in_trace, lambda s: s.name == f"{names.order_events_topic} publish")
    notifier = one(in_trace, lambda s: s.name == f"{names.notifications_queue} process")
    send = one(in_trace, lambda s: s.name == "notification.send")
    ses = one(in_trace, lambda s: s.attributes.get("rpc.method") == "SendEmail")

    # Each hop's parent is the one before: the request, the outbox send, the worker, the
    # event it published, the notifier, its send and the SES call.
    assert placed.kind is SpanKind.PRODUCER and request in ancestors(placed, in_trace)
    assert worker.kind is SpanKind.CONSUMER and worker.parent.span_id == placed.context.span_id
    assert worker.attributes["pickup.outcome"] == "ack"
    assert confirmed.kind is SpanKind.PRODUCER and worker in ancestors(confirmed, in_trace)
    assert notifier.kind is SpanKind.CONSUMER and confirmed in ancestors(notifier, in_trace)
    assert send.parent.span_id == notifier.context.span_id
    assert send.attributes["pickup.order_id"] == order_id
    assert send.attributes["notification.template"] == "order_confirmed"
    assert ses.kind is SpanKind.CLIENT and ses.parent.span_id == send.context.span_id
    assert [s.name for s in ancestors(ses, in_trace)][-1] == request.name

    # The request's own work is in the trace too: SQL, Redis and DynamoDB calls.
    below_request = [s for s in in_trace if request in ancestors(s, in_trace)]
    systems = {
        s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in below_request
    }
    assert {"postgresql", "redis"} <= systems
    assert any(s.attributes.get("rpc.service") == "DynamoDB" for s in below_request)
    # Every span names the process's service.
    assert {s.resource.attributes["service.name"] for s in in_trace} == {"pickup-test"}
    # No personal data in span attributes.
    assert "ada@example.com" not in json.dumps([dict(s.attributes) for s in in_trace], default=str)


async def test_a_message_sent_later_by_the_relay_continues_the_trace_it_was_written_in(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any, spans: InMemorySpanExporter
) -> None:
    settings = traced_settings(make_settings)
    assert tracing.configure_tracing(settings, "pickup-test", exporter=spans)
    async with open_shop(settings) as shop:
        with tracing.span("checkout"):
            async with shop.sessions.begin() as session:
                row = outbox_message(
                    kind="sqs",
                    destination=settings.names.order_queue,
                    message_type="order.placed",
                    payload={"order_id": str(uuid.uuid4())},
                    dedupe="test",
                )
                session.add(row)
        assert "traceparent" in row.attributes  # captured when written, in the request

        # Sent later, by the relay's loop, outside any span.
        assert await OutboxRelay(shop).flush() == 1
        sqs = await shop.aws.client("sqs")
        received = await sqs.receive_message(
            QueueUrl=await queue_url(shop, settings.names.order_queue),
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        )
    [message] = received["Messages"]
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    finished = list(spans.get_finished_spans())
    checkout = one(finished, lambda s: s.name == "checkout")
    publish = one(finished, lambda s: s.name == f"{settings.names.order_queue} publish")
    assert publish.parent.span_id == checkout.context.span_id
    # W3C traceparent: version-traceid-spanid-flags, naming the publish span.
    _, trace_id, span_id, _ = attributes["traceparent"].split("-")
    assert int(trace_id, 16) == checkout.context.trace_id
    assert int(span_id, 16) == publish.context.span_id
    assert attributes["event_type"] == "order.placed"


async def test_idle_background_loops_start_no_traces_and_a_handled_message_does(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any, spans: InMemorySpanExporter
) -> None:
    settings = traced_settings(make_settings)
    assert tracing.configure_tracing(settings, "pickup-test", exporter=spans)
    async with open_shop(settings) as shop:
        tracing.instrument_engine(shop.engine)
        placed = await place(shop)  # outside any span: its message carries no context
        spans.clear()
        worker = order_consumer(shop, **FAST)
        relay = OutboxRelay(shop)
        components = [
            Component("order-consumer", worker.run, worker.stop),
            Component("outbox-relay", lambda: relay.run(0.1)),
        ]
        async with running(components, grace_seconds=10):

            async def confirmed() -> bool:
                return await order_status(shop, placed["order_id"]) is OrderStatus.CONFIRMED

            with tracing.quiet():  # the test's own queries are no part of it
                await eventually(confirmed)
            await asyncio.sleep(1.5)  # more long polls and relay passes, with nothing to do

    finished = list(spans.get_finished_spans())
    exported = by_id(finished)
    roots = [s for s in finished if s.parent is None or s.parent.span_id not in exported]
    # The only trace is the message's (its parent, the checkout's send, was cleared above):
    # no receive poll, relay pass or delete starts one of its own.
    assert [(span.name, span.kind) for span in roots] == [
        (f"{settings.names.order_queue} process", SpanKind.CONSUMER)
    ]
    [consumer] = roots
    below = [span for span in finished if consumer in ancestors(span, finished)]
    assert len(below) == len(finished) - 1
    names = {span.name for span in below}
    assert f"{settings.names.order_events_topic} publish" in names  # the event it sent
    assert "SQS.DeleteMessage" in names  # settling the message is part of its handling


async def test_with_tracing_off_nothing_is_instrumented_and_no_context_travels(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any
) -> None:
    settings = pipeline_settings(make_settings)
    assert not settings.tracing_enabled
    assert tracing.configure_tracing(settings, "pickup-test") is False
    assert not tracing.active()
    async with open_shop(settings) as shop, app_client(settings) as http:
        response = await http.post(
            "/api/orders", json=CHECKOUT, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == 202
        middleware = [m.cls.__name__ for m in http._transport.app.user_middleware]  # type: ignore[attr-defined]
        async with shop.sessions() as session:
            attributes = await session.scalar(select(OutboxMessage.attributes))
    assert "OpenTelemetryMiddleware" not in middleware
    # The instrumentors wrap with wrapt proxies; none is left in place.
    assert not isinstance(AioBaseClient.__dict__["_make_api_call"], ObjectProxy)
    assert not isinstance(Redis.__dict__["execute_command"], ObjectProxy)
    assert attributes == {"event_type": "order.placed"}


def test_tracing_off_loads_no_sdk_and_otel_sdk_disabled_wins(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.configure_tracing(make_settings(tracing_enabled=True), "pickup-test") is False
    assert not tracing.active()

    # A fresh interpreter builds the app with tracing off: no tracing SDK, instrumentation or
    # exporter is even imported, and the tracer provider stays the API's no-op proxy. (redis-py
    # imports the metrics SDK for its own, unused, observability module.)
    program = (
        "import sys\n"
        "from opentelemetry import trace\n"
        "from pickup.api.app import create_app\n"
        "from pickup.settings import load_settings\n"
        "create_app(load_settings(database_url='postgresql://x@db/x', redis_url='redis://r',"
        " env='test'))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace',"
        " 'opentelemetry.instrumentation', 'opentelemetry.exporter'))))\n"
        "print(type(trace.get_tracer_provider()).__name__)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PICKUP_", "OTEL_"))}
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.split() == ["[]", "ProxyTracerProvider"]


# --- A real `pickup notifier` process -----------------------------------------------------


def console_spans(text: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed (one indented JSON object after another)."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        document, position = decoder.raw_decode(text, start)
        found.append(document)
    return found


async def test_a_notifier_process_continues_the_trace_an_event_carries_and_logs_its_ids(
    make_settings: Callable[..., Settings], db_engine: Any, redis: Any, tmp_path: Path
) -> None:
    settings = pipeline_settings(make_settings, staff_alert_emails=["kitchen@shop.example"])
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    health_port = free_port()
    env = {
        **{
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PICKUP_", "OTEL_"))
        },
        **pickup_environment(settings, PICKUP_ENV="test"),
        "PICKUP_HEALTH_PORT": str(health_port),
        "PICKUP_STAFF_ALERT_EMAILS": '["kitchen@shop.example"]',
        "PICKUP_TRACING_ENABLED": "true",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    spans_out, logs_out = tmp_path / "spans.out", tmp_path / "logs.err"
    async with open_shop(settings) as shop:
        with spans_out.open("w") as stdout, logs_out.open("w") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pickup.cli.main", "notifier",
                env=env, stdout=stdout, stderr=stderr, start_new_session=True,
            )  # fmt: skip
            try:

                async def healthy() -> bool:
                    assert process.returncode is None, logs_out.read_text()
                    try:
                        async with httpx.AsyncClient(timeout=2) as http:
                            response = await http.get(f"http://127.0.0.1:{health_port}/healthz")
                            return response.is_success
                    except httpx.HTTPError:
                        return False

                await eventually(healthy, within=120, interval=0.5)
                sns = await shop.aws.client("sns")
                topics = (await sns.list_topics())["Topics"]
                arn = next(
                    topic["TopicArn"]
                    for topic in topics
                    if topic["TopicArn"].endswith(":" + settings.names.inventory_alerts_topic)
                )
                alert = {"type": "inventory.low_stock", "version": 1, "alert_id": "a-1"}
                await sns.publish(
                    TopicArn=arn,
                    Message=json.dumps({**alert, "product_id": "croissant", "available": 2}),
                    MessageAttributes={
                        "event_type": {"DataType": "String", "StringValue": alert["type"]},
                        "traceparent": {
                            "DataType": "String",
                            "StringValue": f"00-{trace_id}-{parent_id}-01",
                        },
                    },
                )

                async def emailed() -> bool:
                    return bool(await log_rows(shop, channel="email", status="sent"))

                await eventually(emailed, within=60)
            finally:
                process.send_signal(signal.SIGTERM)  # its exit flushes the spans
                try:
                    await asyncio.wait_for(process.wait(), timeout=60)
                except TimeoutError:
                    os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()

    in_trace = [
        span
        for span in console_spans(spans_out.read_text())
        if span["context"]["trace_id"] == f"0x{trace_id}"
    ]
    names = {span["name"] for span in in_trace}
    consumer = f"{settings.names.notifications_queue} process"
    assert {consumer, "notification.send", "SESv2.SendEmail"} <= names, names
    [process_span] = [span for span in in_trace if span["name"] == consumer]
    assert process_span["parent_id"] == f"0x{parent_id}"  # the publisher's span
    assert {span["resource"]["attributes"]["service.name"] for span in in_trace} == {
        "pickup-notifier"
    }

    lines = [json.loads(line) for line in logs_out.read_text().splitlines() if line.strip()]
    [sent] = [line for line in lines if line["event"] == "notification.sent"]
    assert sent["trace_id"] == trace_id
    assert sent["key"] == "inventory.alert:a-1:email:k***@shop.example"
    assert "kitchen@shop.example" not in logs_out.read_text()
