"""The outbox relay: messages committed with the data they describe, sent afterwards.

A writer adds an :class:`OutboxMessage` row in the same transaction as its change, so a
message exists if and only if the change committed. After the commit it may send at once
(:meth:`OutboxRelay.flush` with the new ids: the fast path); a loop (:meth:`OutboxRelay.run`)
sends whatever is still unsent, so an SQS or SNS outage delays messages and never loses them.
Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several relays (one per API replica)
never send the same row twice; consumers are idempotent anyway, as SQS delivers at least once.

With tracing on, a row also keeps the trace context it was written in (``traceparent`` and
``tracestate`` among its message attributes): the send happens later, from another task, and
its PRODUCER span continues that trace (:func:`pickup.observability.tracing.publishing`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select

from pickup.adapters.orm import OutboxMessage
from pickup.observability import tracing
from pickup.runtime import Resources

logger = logging.getLogger("pickup.outbox")

MAX_BACKOFF = timedelta(minutes=5)


def outbox_message(
    *, kind: str, destination: str, message_type: str, payload: dict[str, Any], dedupe: str
) -> OutboxMessage:
    """A message for SQS queue or SNS topic ``destination``, versioned by ``message_type``."""
    return OutboxMessage(
        destination_kind=kind,
        destination=destination,
        message_type=message_type,
        # The envelope comes last: a payload can never override the message format version.
        payload={**payload, "type": message_type, "version": 1},
        # The writer's trace context: the relay's send continues the trace it belongs to.
        attributes={"event_type": message_type, **tracing.current_context()},
        deduplication_id=dedupe,
    )


class OutboxRelay:
    def __init__(self, resources: Resources, *, batch_size: int = 25) -> None:
        self.resources = resources
        self.batch_size = batch_size
        self._queue_urls: dict[str, str] = {}
        self._topic_arns: dict[str, str] = {}

    async def flush(self, ids: Iterable[int] | None = None) -> int:
        """Send unsent messages (only ``ids`` if given) that are due; return how many went."""
        now = datetime.now(UTC)
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(list(ids)))
        sent = 0
        async with self.resources.sessions.begin() as session:
            for message in (await session.scalars(query)).all():
                try:
                    await self._send(message)
                except (BotoCoreError, ClientError, OSError) as error:
                    message.attempts += 1
                    message.last_error = f"{type(error).__name__}: {error}"[:1000]
                    backoff = min(timedelta(seconds=2**message.attempts), MAX_BACKOFF)
                    message.next_attempt_at = datetime.now(UTC) + backoff
                    logger.warning(
                        "outbox.send_failed id=%s type=%s order_id=%s attempts=%s error=%s",
                        message.id,
                        message.message_type,
                        message.payload.get("order_id"),
                        message.attempts,
                        message.last_error,
                    )
                    # The endpoint is probably down: leave the rest for the next pass.
                    break
                message.sent_at = datetime.now(UTC)
                sent += 1
        return sent

    async def _send(self, message: OutboxMessage) -> None:
        with tracing.publishing(
            system="aws_sqs" if message.destination_kind == "sqs" else "aws_sns",
            destination=message.destination,
            message_type=message.message_type,
            stored=message.attributes,
        ) as trace_context:
            await self._publish(message, {**message.attributes, **trace_context})

    async def _publish(self, message: OutboxMessage, attributes: dict[str, Any]) -> None:
        body = json.dumps(message.payload, separators=(",", ":"), default=str)
        typed = {
            name: {"DataType": "String", "StringValue": str(value)}
            for name, value in attributes.items()
        }
        if message.destination_kind == "sqs":
            sqs = await self.resources.aws.client("sqs")
            await sqs.send_message(
                QueueUrl=await self._queue_url(message.destination),
                MessageBody=body,
                MessageAttributes=typed,
            )
        else:
            sns = await self.resources.aws.client("sns")
            await sns.publish(
                TopicArn=await self._topic_arn(message.destination),
                Message=body,
                MessageAttributes=typed,
            )

    async def _queue_url(self, name: str) -> str:
        if name not in self._queue_urls:
            sqs = await self.resources.aws.client("sqs")
            self._queue_urls[name] = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
        return self._queue_urls[name]

    async def _topic_arn(self, name: str) -> str:
        if name not in self._topic_arns:
            sns = await self.resources.aws.client("sns")
            async for page in sns.get_paginator("list_topics").paginate():
                for topic in page.get("Topics", []):
                    self._topic_arns[topic["TopicArn"].rsplit(":", 1)[-1]] = topic["TopicArn"]
        if name not in self._topic_arns:
            raise ClientError(
                {"Error": {"Code": "NotFound", "Message": f"no SNS topic named {name}"}}, "Publish"
            )
        return self._topic_arns[name]

    async def run(self, interval: float) -> None:
        """Send what is due every ``interval`` seconds until cancelled."""
        while True:
            try:
                with tracing.quiet():  # a pass with nothing to send is no trace of its own
                    while await self.flush() == self.batch_size:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception:  # a database outage must not end the loop
                logger.exception("outbox.relay_failed")
            await asyncio.sleep(interval)
