"""Lost orders: a 202 whose order is not in PostgreSQL, or whose ``order.placed`` message
reached neither SQS nor the outbox (where the relay would still send it)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.env import BenchEnv


@dataclass
class Reconciliation:
    accepted: int
    lost: int
    missing_in_postgres: list[str] = field(default_factory=list)
    missing_message: list[str] = field(default_factory=list)
    outbox_unsent: int = 0
    in_sqs: int = 0
    duplicate_messages: int = 0

    def as_details(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "lost": self.lost,
            "lost_not_in_postgres": len(self.missing_in_postgres),
            "lost_no_message": len(self.missing_message),
            "outbox_unsent": self.outbox_unsent,
            "messages_in_sqs": self.in_sqs,
            "duplicate_messages": self.duplicate_messages,
            "lost_examples": (self.missing_in_postgres + self.missing_message)[:5],
        }


async def _outbox(conn: Any, ids: list[str]) -> dict[str, bool]:
    rows = await conn.fetch(
        "SELECT payload->>'order_id' AS order_id, sent_at IS NOT NULL AS sent FROM outbox "
        "WHERE message_type = 'order.placed' AND payload->>'order_id' = ANY($1::text[])",
        ids,
    )
    return {row["order_id"]: row["sent"] for row in rows}


async def drain_sqs(env: BenchEnv, queue: str, *, hold_seconds: int = 600) -> list[str]:
    """Every order id on ``queue`` (messages are hidden, not deleted, while we count)."""
    from pickup.adapters.aws import AWSClients

    found: list[str] = []
    async with AWSClients(env.settings()) as aws:
        sqs = await aws.client("sqs")
        url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
        empty = 0
        while empty < 2:
            response = await sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hold_seconds,
                WaitTimeSeconds=0,
            )
            messages = response.get("Messages", [])
            empty = empty + 1 if not messages else 0
            for message in messages:
                body = json.loads(message["Body"])
                if "order_id" in body:
                    found.append(str(body["order_id"]))
    return found


async def _reconcile(
    env: BenchEnv, order_ids: list[str], *, check_sqs: bool, wait_seconds: float
) -> Reconciliation:
    import asyncpg

    conn = await asyncpg.connect(env.database_url)
    try:
        # The fast path sends at once; anything it missed goes within a relay pass or two.
        deadline = time.monotonic() + wait_seconds
        while True:
            sent = await _outbox(conn, order_ids)
            if all(sent.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        rows = await conn.fetch(
            "SELECT id::text AS id FROM orders WHERE id::text = ANY($1::text[])", order_ids
        )
    finally:
        await conn.close()
    in_postgres = {row["id"] for row in rows}
    result = Reconciliation(accepted=len(order_ids), lost=0)
    result.missing_in_postgres = [oid for oid in order_ids if oid not in in_postgres]
    result.outbox_unsent = sum(1 for value in sent.values() if not value)
    if check_sqs:
        messages = await drain_sqs(env, env.settings().names.order_queue)
        on_queue = set(messages)
        result.in_sqs = len(on_queue & set(order_ids))
        result.duplicate_messages = len(messages) - len(on_queue)
    else:
        on_queue = set()
    for oid in order_ids:
        if oid in in_postgres and oid not in on_queue and oid not in sent:
            result.missing_message.append(oid)
        elif oid in in_postgres and check_sqs and oid not in on_queue and sent.get(oid):
            # Marked sent, yet not on the queue: the message was lost on the way.
            result.missing_message.append(oid)
    result.lost = len(result.missing_in_postgres) + len(result.missing_message)
    return result


def reconcile(
    env: BenchEnv, order_ids: Iterable[str], *, check_sqs: bool = True, wait_seconds: float = 15
) -> Reconciliation:
    """Check every accepted order; ``check_sqs=False`` when a worker consumes the queue."""
    ids = sorted(set(order_ids))
    return asyncio.run(_reconcile(env, ids, check_sqs=check_sqs, wait_seconds=wait_seconds))
