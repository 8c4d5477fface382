"""A notification is sent once, whatever fails around the send: real PostgreSQL, Redis and
moto (over HTTP), with faults made by cutting TCP lines (bench.chaos.proxy) or by an endpoint
that takes a request and never answers it.

- An email whose outcome cannot be recorded because PostgreSQL went away is recorded when it
  is back, and not sent again.
- A send in progress (a live ``sending`` row) makes a second delivery wait; a claim left by a
  sender that died is counted ambiguous and sent again.
- An endpoint that refuses connections: ``failed``, and the next delivery sends.
- The sending clients never retry by themselves; a request whose answer was lost is
  ``ambiguous``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bench.chaos.proxy import CuttableProxy
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from prometheus_client import REGISTRY

from pickup.adapters.orm import NotificationLog
from pickup.messaging.consumer import Retry
from pickup.notifier import channels as channels_module
from pickup.notifier.channels import (
    Channels,
    Delivery,
    Notification,
    OutcomeUnrecorded,
    SendFailed,
    SendInProgress,
    deliver,
    maybe_delivered,
)
from pickup.notifier.handler import notify_customer
from pickup.notifier.templates import render_email
from pickup.runtime import Resources
from pickup.settings import Settings
from tests.integration.test_degradation import proxies  # noqa: F401 (a fixture)
from tests.integration.test_notifier import confirmed_event
from tests.integration.test_worker import log_rows, open_shop, pipeline_settings, sent_emails
from tests.services import Services

LEASE = 60


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(make_settings, notification_send_lease_seconds=LEASE)


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    async with open_shop(shop_settings) as resources:
        yield resources


def unique_email() -> str:
    return f"cust-{uuid.uuid4().hex[:10]}@example.com"


def counted(result: str) -> float:
    labels = {"channel": "email", "result": result}
    return REGISTRY.get_sample_value("pickup_notifications_total", labels) or 0.0


async def statuses(resources: Resources, **where: Any) -> list[tuple[int, str]]:
    return [(row.attempt, row.status) for row in await log_rows(resources, **where)]


def email_to(address: str, key: str) -> Notification:
    context = {
        "shop_name": "Pickup",
        "headline": "Low stock",
        "product_id": "bun",
        "product_name": "Bun",
        "available": 1,
        "on_hand": 1,
        "reserved": 0,
        "low_stock_threshold": 5,
        "critical_threshold": 2,
        "reorder_quantity": 10,
        "inventory_url": "http://shop.example/admin/inventory",
    }
    return Notification(
        channel="email",
        recipient=address,
        template="stock_alert",
        dedupe_key=key,
        email=render_email("stock_alert", context),
    )


# --- PostgreSQL goes away between the send and its record ----------------------------------


class CutAfterSend(Channels):
    """Sends for real, then cuts the line to PostgreSQL before the outcome is recorded and
    restores it ``down_for`` seconds later (None: the test restores it)."""

    def __init__(self, resources: Resources, line: CuttableProxy, down_for: float | None):
        super().__init__(resources)
        self.line = line
        self.down_for = down_for
        self.restored: asyncio.Task[None] | None = None

    async def send(self, notification: Notification) -> str:
        message_id = await super().send(notification)
        await asyncio.to_thread(self.line.cut)
        if self.down_for is not None:
            self.restored = asyncio.create_task(self._restore_later(self.down_for))
        return message_id

    async def _restore_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(self.line.restore)


async def test_a_send_recorded_while_postgresql_is_down_is_recorded_when_it_is_back_not_resent(
    make_settings: Callable[..., Settings],
    database_url: str,
    services: Services,
    proxies: Callable[[str], tuple[CuttableProxy, str]],  # noqa: F811
    db_engine: Any,
    redis: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    line, proxied = proxies(database_url)
    settings = pipeline_settings(
        make_settings, database_url=proxied, notification_send_lease_seconds=LEASE
    )
    address = unique_email()
    async with open_shop(settings) as shop:
        placed, confirmed = await confirmed_event(shop, email=address)
        order_id = uuid.UUID(placed["order_id"])
        cutting = CutAfterSend(shop, line, down_for=2.0)
        with caplog.at_level(logging.INFO, logger="pickup.notifier"):
            await notify_customer(shop, cutting, "order.confirmed", confirmed)
        assert cutting.restored is not None and cutting.restored.done()
        assert "notification.record_retrying" in caplog.text  # the first writes failed
        assert "notification.recorded" in caplog.text

        rows = await log_rows(shop, order_id=order_id)
        assert [(row.attempt, row.status) for row in rows] == [(1, "sent")]
        assert rows[0].provider_message_id

        # The message comes back (it may have been redelivered meanwhile): nothing is resent.
        await notify_customer(shop, Channels(shop), "order.confirmed", confirmed)
    assert len(await sent_emails(services.aws_endpoint, address)) == 1


async def test_an_outcome_unrecorded_within_the_lease_is_written_when_the_message_comes_back(
    make_settings: Callable[..., Settings],
    database_url: str,
    services: Services,
    proxies: Callable[[str], tuple[CuttableProxy, str]],  # noqa: F811
    db_engine: Any,
    redis: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Give up recording 1.5 s after the claim instead of 45 s, so the test is quick.
    monkeypatch.setattr(channels_module, "RECORD_SHARE_OF_LEASE", 1.5 / LEASE)
    line, proxied = proxies(database_url)
    settings = pipeline_settings(
        make_settings, database_url=proxied, notification_send_lease_seconds=LEASE
    )
    address = unique_email()
    async with open_shop(settings) as shop:
        placed, confirmed = await confirmed_event(shop, email=address)
        cutting = CutAfterSend(shop, line, down_for=None)
        with pytest.raises(OutcomeUnrecorded) as unrecorded:
            await notify_customer(shop, cutting, "order.confirmed", confirmed)
        assert unrecorded.value.delay is not None and unrecorded.value.delay > LEASE / 10
        key = f"order.confirmed:{placed['order_id']}:email"
        assert cutting.unrecorded[key].status == "sent"  # remembered by this process

        line.restore()
        await notify_customer(shop, cutting, "order.confirmed", confirmed)  # the redelivery
        assert cutting.unrecorded == {}
        rows = await log_rows(shop, order_id=uuid.UUID(placed["order_id"]))
        assert [(row.attempt, row.status) for row in rows] == [(1, "sent")]
    assert len(await sent_emails(services.aws_endpoint, address)) == 1


# --- Claims ----------------------------------------------------------------------------------


class HeldSend(Channels):
    """Claims, then waits for ``go`` before sending (a slow provider)."""

    def __init__(self, resources: Resources) -> None:
        super().__init__(resources)
        self.go = asyncio.Event()

    async def send(self, notification: Notification) -> str:
        await self.go.wait()
        return await super().send(notification)


async def test_a_send_in_progress_makes_a_second_delivery_wait_without_sending(
    shop: Resources, services: Services
) -> None:
    address = unique_email()
    placed, confirmed = await confirmed_event(shop, email=address)
    order_id = uuid.UUID(placed["order_id"])
    slow = HeldSend(shop)
    first = asyncio.create_task(notify_customer(shop, slow, "order.confirmed", confirmed))
    try:
        for _ in range(100):
            if await statuses(shop, order_id=order_id) == [(1, "sending")]:
                break
            await asyncio.sleep(0.05)
        assert await statuses(shop, order_id=order_id) == [(1, "sending")]

        before = counted("in_progress")
        with pytest.raises(SendInProgress) as waiting:
            await notify_customer(shop, Channels(shop), "order.confirmed", confirmed)
        assert isinstance(waiting.value, Retry)  # the consumer brings the message back
        assert waiting.value.delay is not None and LEASE - 10 < waiting.value.delay <= LEASE + 1
        assert counted("in_progress") == before + 1
        assert await statuses(shop, order_id=order_id) == [(1, "sending")]  # no new row
        assert await sent_emails(services.aws_endpoint, address) == []
    finally:
        slow.go.set()
        await first
    assert await statuses(shop, order_id=order_id) == [(1, "sent")]
    await notify_customer(shop, Channels(shop), "order.confirmed", confirmed)
    assert len(await sent_emails(services.aws_endpoint, address)) == 1


async def test_a_claim_left_by_a_sender_that_died_is_counted_ambiguous_and_sent_again(
    shop: Resources, services: Services
) -> None:
    address = unique_email()
    placed, confirmed = await confirmed_event(shop, email=address)
    order_id = uuid.UUID(placed["order_id"])
    # What a notifier killed between its claim and its record leaves behind.
    claimed_at = datetime.now(UTC) - timedelta(seconds=LEASE + 5)
    async with shop.sessions.begin() as session:
        session.add(
            NotificationLog(
                order_id=order_id,
                channel="email",
                template="order_confirmed",
                recipient=address,
                status="sending",
                attempt=1,
                dedupe_key=f"order.confirmed:{order_id}:email",
                created_at=claimed_at,
                updated_at=claimed_at,
            )
        )
    before = counted("ambiguous")

    await notify_customer(shop, Channels(shop), "order.confirmed", confirmed)

    rows = await log_rows(shop, order_id=order_id)
    assert [(row.attempt, row.status) for row in rows] == [(1, "ambiguous"), (2, "sent")]
    assert rows[0].error and "stopped before recording" in rows[0].error
    assert counted("ambiguous") == before + 1
    assert len(await sent_emails(services.aws_endpoint, address)) == 1  # the dead one never sent


# --- The line to the provider ---------------------------------------------------------------


async def test_a_refused_connection_is_recorded_failed_and_the_next_delivery_sends(
    shop: Resources,
    make_settings: Callable[..., Settings],
    services: Services,
    proxies: Callable[[str], tuple[CuttableProxy, str]],  # noqa: F811
) -> None:
    address = unique_email()
    placed, confirmed = await confirmed_event(shop, email=address)
    order_id = uuid.UUID(placed["order_id"])
    line, proxied = proxies(services.aws_endpoint)
    notifier_settings = pipeline_settings(
        make_settings, aws_endpoint_url=proxied, notification_send_lease_seconds=LEASE
    )
    async with Resources.open(notifier_settings) as notifier:
        with line.down():  # connections refused
            with pytest.raises(Retry, match="Could not connect"):
                await notify_customer(notifier, Channels(notifier), "order.confirmed", confirmed)
        rows = await log_rows(shop, order_id=order_id)
        assert [(row.attempt, row.status) for row in rows] == [(1, "failed")]
        assert rows[0].error and "EndpointConnectionError" in rows[0].error
        assert await sent_emails(services.aws_endpoint, address) == []

        await notify_customer(notifier, Channels(notifier), "order.confirmed", confirmed)
    assert await statuses(shop, order_id=order_id) == [(1, "failed"), (2, "sent")]
    assert len(await sent_emails(services.aws_endpoint, address)) == 1


class SwallowingEndpoint:
    """An HTTP endpoint that reads each request and drops the connection without answering:
    an answer lost after the request reached the server. ``reset``: with an RST (a vanished
    host), else with an orderly close."""

    def __init__(self, *, reset: bool) -> None:
        self.reset = reset
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        self.requests += 1
        if self.reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
async def test_the_sending_client_makes_one_request_and_a_lost_answer_is_ambiguous(
    shop: Resources, make_settings: Callable[..., Settings], services: Services, reset: bool
) -> None:
    address = unique_email()
    key = f"inventory.alert:{uuid.uuid4()}:email:{address}"
    before = counted("ambiguous")
    server = SwallowingEndpoint(reset=reset)
    async with server as endpoint:
        swallowing = pipeline_settings(
            make_settings, aws_endpoint_url=endpoint, notification_send_lease_seconds=LEASE
        )
        async with Resources.open(swallowing) as notifier:
            with pytest.raises(SendFailed) as failed:
                await deliver(notifier, Channels(notifier), email_to(address, key))
            assert failed.value.ambiguous
            assert server.requests == 1  # botocore did not send it again
            # The other clients keep botocore's retries: the endpoint counts those.
            sqs = await notifier.aws.client("sqs")
            with pytest.raises(Exception):  # noqa: B017 - whichever error, after retries
                await sqs.list_queues()
            assert server.requests > 2
    assert await statuses(shop, dedupe_key=key) == [(1, "ambiguous")]
    assert counted("ambiguous") == before + 1

    # At least once: the next delivery sends it.
    assert await deliver(shop, Channels(shop), email_to(address, key)) is Delivery.SENT
    assert await statuses(shop, dedupe_key=key) == [(1, "ambiguous"), (2, "sent")]
    assert len(await sent_emails(services.aws_endpoint, address)) == 1


async def test_a_text_message_is_sent_the_same_way_one_request_and_no_retry_after_an_ambiguous_one(
    shop: Resources, make_settings: Callable[..., Settings]
) -> None:
    key = f"order.ready:{uuid.uuid4()}:sms"
    text = Notification(
        channel="sms", recipient="+447700900123", template="order_ready", dedupe_key=key, sms="Hi"
    )
    server = SwallowingEndpoint(reset=True)
    async with server as endpoint:
        swallowing = pipeline_settings(
            make_settings, aws_endpoint_url=endpoint, notification_send_lease_seconds=LEASE
        )
        async with Resources.open(swallowing) as notifier:
            with pytest.raises(SendFailed) as failed:
                await deliver(notifier, Channels(notifier), text, retry_after_failure=False)
    assert failed.value.ambiguous and server.requests == 1
    # A text with an email fallback is not tried again: the fallback goes out instead.
    outcome = await deliver(shop, Channels(shop), text, retry_after_failure=False)
    assert outcome is Delivery.GAVE_UP
    assert await statuses(shop, dedupe_key=key) == [(1, "ambiguous")]
    # Without a fallback it is sent again.
    assert await deliver(shop, Channels(shop), text) is Delivery.SENT
    assert await statuses(shop, dedupe_key=key) == [(1, "ambiguous"), (2, "sent")]


def answered(status: int, code: str) -> ClientError:
    metadata = {"HTTPStatusCode": status}
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": metadata}, "SendEmail")  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("error", "maybe"),
    [
        (answered(400, "MessageRejected"), False),
        (answered(429, "TooManyRequestsException"), False),
        (answered(500, "InternalFailure"), True),
        (ConnectTimeoutError(endpoint_url="http://ses"), False),
        (ReadTimeoutError(endpoint_url="http://ses"), True),
        (TimeoutError(), True),
        (ConnectionRefusedError(), False),
    ],
)
def test_what_counts_as_perhaps_sent(error: BaseException, maybe: bool) -> None:
    assert maybe_delivered(error) is maybe
