"""A long-polling SQS consumer that runs one async handler per message.

A handler says how a message went by how it returns:

- it returns: the message is deleted (acknowledged);
- it raises :class:`Retry`: the message comes back after a backoff (its visibility timeout is
  changed), growing with every receive, until the queue's redrive policy moves it to the DLQ;
- it raises :class:`Poison`: the message cannot ever succeed (malformed, unknown type or
  version). It is logged with the reason and made visible again at once, so it reaches the DLQ
  after ``maxReceiveCount`` receives without holding anything up. SQS's redrive stays the only
  way into the DLQ, so a message is never both in the DLQ and in the queue;
- any other exception is logged with its traceback and treated as :class:`Retry`.

A message is deleted only after its handler succeeded, so delivery is at least once and
handlers must be idempotent. While a handler runs, the message's visibility is extended, so a
slow handler is not handed to a second consumer. :meth:`SQSConsumer.stop` (SIGTERM) stops
receiving, lets the handlers in flight finish and acknowledges them; a message not finished
within ``shutdown_timeout_seconds`` is left to come back after its visibility timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pickup.adapters.aws import AWSClients
from pickup.observability import tracing
from pickup.observability.metrics import CONSUMER_LAST_POLL as LAST_POLL
from pickup.observability.metrics import QUEUE_HANDLING_SECONDS as HANDLING_SECONDS
from pickup.observability.metrics import QUEUE_IN_FLIGHT as IN_FLIGHT
from pickup.observability.metrics import QUEUE_LAG_SECONDS as LAG_SECONDS
from pickup.observability.metrics import QUEUE_MESSAGES as MESSAGES

logger = logging.getLogger("pickup.messaging")

MAX_VISIBILITY_SECONDS = 43_200  # SQS's ceiling for one visibility timeout


class Retry(Exception):
    """Try this message again later: after ``delay`` seconds, or the consumer's backoff."""

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class Poison(Exception):
    """This message can never succeed; it goes to the DLQ after ``maxReceiveCount`` receives."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Message:
    """One received message, the same whether it came from a poll or a Lambda event."""

    id: str
    body: str
    receipt_handle: str
    receive_count: int = 1
    attributes: dict[str, str] = field(default_factory=dict)
    sent_at: datetime | None = None

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; :class:`Poison` if it is not one.

        A body SNS wrapped (a subscription without raw delivery) is unwrapped first.
        """
        try:
            document = json.loads(self.body)
        except (TypeError, ValueError):
            raise Poison("the body is not JSON") from None
        if (
            isinstance(document, dict)
            and document.get("Type") == "Notification"
            and isinstance(document.get("Message"), str)
        ):
            try:
                document = json.loads(document["Message"])
            except ValueError:
                raise Poison("the SNS notification's message is not JSON") from None
        if not isinstance(document, dict):
            raise Poison("the body is not a JSON object")
        return document

    @classmethod
    def from_sqs(cls, raw: dict[str, Any]) -> Message:
        """From a ``ReceiveMessage`` entry."""
        system = raw.get("Attributes", {})
        sent = system.get("SentTimestamp")
        return cls(
            id=raw["MessageId"],
            body=raw.get("Body", ""),
            receipt_handle=raw["ReceiptHandle"],
            receive_count=int(system.get("ApproximateReceiveCount", "1")),
            attributes={
                name: value.get("StringValue", "")
                for name, value in (raw.get("MessageAttributes") or {}).items()
            },
            sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        )

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> Message:
        """From one record of a Lambda SQS event (camelCase, other attribute shapes)."""
        system = record.get("attributes", {})
        sent = system.get("SentTimestamp")
        return cls(
            id=record["messageId"],
            body=record.get("body", ""),
            receipt_handle=record.get("receiptHandle", ""),
            receive_count=int(system.get("ApproximateReceiveCount", "1")),
            attributes={
                name: value.get("stringValue", "")
                for name, value in (record.get("messageAttributes") or {}).items()
            },
            sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        )


Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerConfig:
    queue_name: str
    label: str  # a short name for logs and metrics ("orders", "notifications")
    concurrency: int = 10
    wait_time_seconds: int = 20
    visibility_timeout_seconds: int | None = None  # None: the queue's own setting
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    shutdown_timeout_seconds: float = 25.0
    max_handling_seconds: float = 900.0


def backoff_seconds(receive_count: int, base: float, ceiling: float) -> float:
    """Exponential backoff with jitter: about ``base * 2**(n-1)``, at most ``ceiling``."""
    exponent = min(max(receive_count - 1, 0), 30)
    delay = min(base * 2**exponent, ceiling)
    return delay * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not security


class SQSConsumer:
    """Receives from one queue and runs ``handler`` on up to ``concurrency`` messages at once."""

    def __init__(self, aws: AWSClients, handler: Handler, config: ConsumerConfig) -> None:
        self.aws = aws
        self.handler = handler
        self.config = config
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._queue_url: str | None = None
        self._visibility = config.visibility_timeout_seconds
        self.last_poll: float | None = None  # monotonic time of the last completed poll
        self.running = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stop(self) -> None:
        """Stop receiving; :meth:`run` returns once the messages in flight are done."""
        self._stopping.set()

    async def _sqs(self) -> Any:
        return await self.aws.client("sqs")

    async def _prepare(self) -> None:
        sqs = await self._sqs()
        self._queue_url = (await sqs.get_queue_url(QueueName=self.config.queue_name))["QueueUrl"]
        if self._visibility is None:
            attributes = await sqs.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=["VisibilityTimeout"]
            )
            self._visibility = int(attributes["Attributes"].get("VisibilityTimeout", "30"))

    async def run(self) -> None:
        """Consume until :meth:`stop`; then finish what is in flight and return."""
        self.running = True
        try:
            await self._until_stopped(self._prepare_with_retries())
            failures = 0
            while not self._stopping.is_set():
                await self._until_stopped(self._slots.acquire())
                if self._stopping.is_set():
                    break
                self._slots.release()
                free = self.config.concurrency - len(self._tasks)
                try:
                    received = await self._until_stopped(self._receive(max(1, min(10, free))))
                except (BotoCoreError, ClientError, OSError) as error:
                    failures += 1
                    delay = min(2.0**failures, 30.0)
                    logger.warning(
                        "queue.receive_failed queue=%s error=%s retry_in=%.0fs",
                        self.config.label,
                        error,
                        delay,
                    )
                    await self._sleep(delay)
                    continue
                failures = 0
                self.last_poll = time.monotonic()
                LAST_POLL.labels(self.config.label).set(time.time())
                for raw in received or []:
                    await self._slots.acquire()
                    task = asyncio.create_task(self._traced(Message.from_sqs(raw)))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            await self._drain()
            self.running = False

    async def _prepare_with_retries(self) -> None:
        attempt = 0
        while True:
            try:
                await self._prepare()
                return
            except (BotoCoreError, ClientError, OSError) as error:
                attempt += 1
                logger.warning("queue.unavailable queue=%s error=%s", self.config.queue_name, error)
                await asyncio.sleep(min(2.0**attempt, 30.0))

    async def _until_stopped(self, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` unless :meth:`stop` comes first (then cancel it, return None).

        A receive cancelled this way may have taken messages off the queue; they come back
        after their visibility timeout, so nothing is lost.
        """
        work = asyncio.ensure_future(awaitable)
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if work.done():
            return work.result()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
        return None

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _receive(self, count: int) -> list[dict[str, Any]]:
        sqs = await self._sqs()
        response = await sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self.config.wait_time_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        return list(response.get("Messages", []))

    async def _drain(self) -> None:
        if not self._tasks:
            return
        logger.info("queue.draining queue=%s in_flight=%s", self.config.label, len(self._tasks))
        _, pending = await asyncio.wait(
            set(self._tasks), timeout=self.config.shutdown_timeout_seconds
        )
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            logger.warning(
                "queue.drain_timeout queue=%s unfinished=%s (they will be redelivered)",
                self.config.label,
                len(pending),
            )

    # --- One message ----------------------------------------------------------------------

    async def _traced(self, message: Message) -> None:
        """:meth:`_process` in a CONSUMER span that continues the trace the message carried."""
        with tracing.consuming(message, self.config.queue_name):
            await self._process(message)

    async def _process(self, message: Message) -> None:
        label = self.config.label
        if message.sent_at is not None:  # how long it waited in the queue
            LAG_SECONDS.labels(label).observe(max(time.time() - message.sent_at.timestamp(), 0.0))
        IN_FLIGHT.labels(label).inc()
        heartbeat = asyncio.create_task(self._keep_invisible(message))
        started = time.perf_counter()
        try:
            outcome, delay = await self._run_handler(message)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            IN_FLIGHT.labels(label).dec()
            HANDLING_SECONDS.labels(label).observe(time.perf_counter() - started)
            self._slots.release()
        MESSAGES.labels(label, outcome).inc()
        tracing.record_outcome(outcome)
        try:
            if outcome == "ack":
                await self._delete(message)
            else:
                await self._change_visibility(message, delay)
        except (BotoCoreError, ClientError, OSError) as error:
            # Not deleted: it comes back and the idempotent handler sees it again.
            logger.warning(
                "queue.settle_failed queue=%s message_id=%s outcome=%s error=%s",
                label,
                message.id,
                outcome,
                error,
            )

    async def _run_handler(self, message: Message) -> tuple[str, int]:
        """(outcome, visibility delay) of running the handler on ``message``."""
        config = self.config
        try:
            async with asyncio.timeout(config.max_handling_seconds):
                await self.handler(message)
        except Poison as poison:
            logger.error(
                "queue.poison_message queue=%s message_id=%s receive_count=%s reason=%s "
                "(it moves to the DLQ once the queue's maxReceiveCount is reached)",
                config.label,
                message.id,
                message.receive_count,
                poison.reason,
            )
            return "poison", 0
        except Retry as retry:
            delay = self._delay(message, retry.delay)
            logger.warning(
                "queue.retry queue=%s message_id=%s receive_count=%s retry_in=%ss reason=%s",
                config.label,
                message.id,
                message.receive_count,
                delay,
                retry.reason,
            )
            return "retry", delay
        except Exception:  # unexpected: retried like a temporary failure
            delay = self._delay(message, None)
            logger.exception(
                "queue.handler_failed queue=%s message_id=%s receive_count=%s retry_in=%ss",
                config.label,
                message.id,
                message.receive_count,
                delay,
            )
            return "error", delay
        return "ack", 0

    def _delay(self, message: Message, requested: float | None) -> int:
        if requested is None:
            requested = backoff_seconds(
                message.receive_count,
                self.config.backoff_base_seconds,
                self.config.backoff_max_seconds,
            )
        return max(0, min(round(requested), MAX_VISIBILITY_SECONDS))

    async def _keep_invisible(self, message: Message) -> None:
        """Extend the message's visibility while its handler runs (a slow handler)."""
        visibility = max(int(self._visibility or 30), 1)
        interval = max(visibility / 2, 0.5)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._change_visibility(message, visibility)
            except (BotoCoreError, ClientError, OSError) as error:
                logger.warning(
                    "queue.visibility_extension_failed queue=%s message_id=%s error=%s",
                    self.config.label,
                    message.id,
                    error,
                )

    async def _delete(self, message: Message) -> None:
        sqs = await self._sqs()
        await sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message.receipt_handle)

    async def _change_visibility(self, message: Message, seconds: int) -> None:
        sqs = await self._sqs()
        await sqs.change_message_visibility(
            QueueUrl=self._queue_url,
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=seconds,
        )
