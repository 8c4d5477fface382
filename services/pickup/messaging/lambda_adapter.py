"""Run a queue handler as an AWS Lambda function (an SQS event source mapping).

``handler(event, context)`` takes the SQS batch Lambda delivers and answers
``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`` naming the messages that
did not succeed (``Retry``, ``Poison`` or an exception), so Lambda deletes the others and
only those come back (the mapping needs ``FunctionResponseTypes: ["ReportBatchItemFailures"]``).
Retries and the DLQ are then the queue's redrive policy, as for the long-running consumer.

The event loop and the clients (:class:`~pickup.runtime.Resources`) are built on the first
invocation and kept for the next ones while the execution environment lives, the way Lambda
expects initialisation to be reused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from pickup.messaging.consumer import Handler, Message, Poison, Retry
from pickup.runtime import Resources
from pickup.settings import Settings, load_settings

logger = logging.getLogger("pickup.messaging.lambda")

HandlerFactory = Callable[[Resources], Handler]


class LambdaAdapter:
    def __init__(
        self,
        factory: HandlerFactory,
        *,
        settings: Settings | None = None,
        concurrency: int = 10,
    ) -> None:
        self._factory = factory
        self._settings = settings
        self._concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack: AsyncExitStack | None = None
        self._handler: Handler | None = None

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self.handle(event))

    async def _ready_handler(self) -> Handler:
        if self._handler is None:
            settings = self._settings or load_settings()
            self._stack = AsyncExitStack()
            resources = await self._stack.enter_async_context(Resources.open(settings))
            self._handler = self._factory(resources)
        return self._handler

    async def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        handler = await self._ready_handler()
        records = list(event.get("Records") or [])
        slots = asyncio.Semaphore(self._concurrency)

        async def one(record: dict[str, Any]) -> str | None:
            """The record's message id if it failed, else None."""
            identifier = str(record.get("messageId", ""))
            async with slots:
                try:
                    message = Message.from_lambda(record)
                    await handler(message)
                except Poison as poison:
                    logger.error(
                        "lambda.poison_message message_id=%s reason=%s", identifier, poison.reason
                    )
                    return identifier
                except Retry as retry:
                    logger.warning("lambda.retry message_id=%s reason=%s", identifier, retry.reason)
                    return identifier
                except Exception:
                    logger.exception("lambda.handler_failed message_id=%s", identifier)
                    return identifier
            return None

        failed = await asyncio.gather(*(one(record) for record in records))
        return {
            "batchItemFailures": [
                {"itemIdentifier": identifier} for identifier in failed if identifier is not None
            ]
        }

    def close(self) -> None:
        """Close the clients and the loop (tests; Lambda simply freezes the environment)."""
        if self._loop is None or self._loop.is_closed():
            return
        if self._stack is not None:
            self._loop.run_until_complete(self._stack.aclose())
        self._stack, self._handler = None, None
        self._loop.close()
