"""Dead-letter queues: counts, a look at what is in them, redrive and purge.

Every work queue has a DLQ (``<queue>-dlq``) that SQS's redrive policy fills after
``PICKUP_SQS_MAX_RECEIVE_COUNT`` receives. Redrive moves messages back to their queue: each
is sent to the queue, then deleted from the DLQ, so an interrupted redrive can at worst leave
a copy in both, which the idempotent handlers absorb; running it again moves what is left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pickup.adapters.aws import AWSClients
from pickup.settings import Settings

ALIASES = {
    "orders": "order_queue",
    "order": "order_queue",
    "order-processing": "order_queue",
    "notifications": "notifications_queue",
    "notification": "notifications_queue",
}
PEEK_VISIBILITY_SECONDS = 30
MOVE_VISIBILITY_SECONDS = 60
SUMMARY_LENGTH = 160


class UnknownQueue(ValueError):
    pass


def resolve(settings: Settings, name: str) -> tuple[str, str]:
    """(queue, dlq) for ``orders``, ``notifications`` or a full queue or DLQ name."""
    names = settings.names
    attribute = ALIASES.get(name.lower())
    queue = getattr(names, attribute) if attribute else name.removesuffix("-dlq")
    if queue not in names.queues:
        raise UnknownQueue(
            f"unknown queue {name!r}: use one of orders, notifications ({', '.join(names.queues)})"
        )
    return queue, names.queues[queue]


@dataclass(frozen=True)
class QueueCounts:
    queue: str
    dlq: str
    waiting: int
    in_flight: int
    delayed: int
    dead: int


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    event_type: str | None
    summary: str
    receive_count: int
    sent_at: datetime | None
    body: str
    attributes: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "event_type": self.event_type,
            "summary": self.summary,
            "receive_count": self.receive_count,
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "attributes": self.attributes,
            "body": self.body,
        }


async def _url(sqs: Any, name: str) -> str:
    return str((await sqs.get_queue_url(QueueName=name))["QueueUrl"])


async def _attributes(sqs: Any, url: str) -> dict[str, str]:
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return dict(response.get("Attributes", {}))


async def counts(aws: AWSClients, settings: Settings) -> list[QueueCounts]:
    sqs = await aws.client("sqs")
    result = []
    for queue, dlq in settings.names.queues.items():
        main = await _attributes(sqs, await _url(sqs, queue))
        dead = await _attributes(sqs, await _url(sqs, dlq))
        result.append(
            QueueCounts(
                queue=queue,
                dlq=dlq,
                waiting=int(main.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(main.get("ApproximateNumberOfMessagesNotVisible", 0)),
                delayed=int(main.get("ApproximateNumberOfMessagesDelayed", 0)),
                dead=int(dead.get("ApproximateNumberOfMessages", 0)),
            )
        )
    return result


def _summarise(body: str, attributes: dict[str, str]) -> tuple[str | None, str]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        text = " ".join(body.split())
        return attributes.get("event_type"), (text[:SUMMARY_LENGTH] or "(empty body)")
    event_type = document.get("type") or attributes.get("event_type")
    keys = ("order_id", "code", "status", "product_id", "level", "alert_id")
    parts = [f"{key}={document[key]}" for key in keys if document.get(key) is not None]
    summary = " ".join(parts) or json.dumps(document)[:SUMMARY_LENGTH]
    return (str(event_type) if event_type else None), summary[:SUMMARY_LENGTH]


def _dead_letter(raw: dict[str, Any]) -> DeadLetter:
    attributes = {
        name: value.get("StringValue", "")
        for name, value in (raw.get("MessageAttributes") or {}).items()
    }
    system = raw.get("Attributes", {})
    sent = system.get("SentTimestamp")
    event_type, summary = _summarise(raw.get("Body", ""), attributes)
    return DeadLetter(
        message_id=raw["MessageId"],
        event_type=event_type,
        summary=summary,
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        body=raw.get("Body", ""),
        attributes=attributes,
    )


async def _receive(sqs: Any, url: str, count: int, visibility: int) -> list[dict[str, Any]]:
    response = await sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(10, count)),
        WaitTimeSeconds=1,
        VisibilityTimeout=visibility,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


async def peek(aws: AWSClients, settings: Settings, name: str, limit: int = 10) -> list[DeadLetter]:
    """Up to ``limit`` messages in the DLQ of ``name``, left in place."""
    _, dlq = resolve(settings, name)
    sqs = await aws.client("sqs")
    url = await _url(sqs, dlq)
    seen: dict[str, dict[str, Any]] = {}
    try:
        while len(seen) < limit:
            batch = await _receive(sqs, url, limit - len(seen), PEEK_VISIBILITY_SECONDS)
            fresh = [raw for raw in batch if raw["MessageId"] not in seen]
            if not fresh:
                break
            for raw in fresh:
                seen[raw["MessageId"]] = raw
    finally:
        # Visible again at once: looking must not hide messages from a redrive.
        handles = [raw["ReceiptHandle"] for raw in seen.values()]
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(handles[start : start + 10])
            ]
            await sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return [_dead_letter(raw) for raw in seen.values()]


async def redrive(aws: AWSClients, settings: Settings, name: str, limit: int | None = None) -> int:
    """Move messages from the DLQ of ``name`` back to its queue; how many moved."""
    queue, dlq = resolve(settings, name)
    sqs = await aws.client("sqs")
    queue_url, dlq_url = await _url(sqs, queue), await _url(sqs, dlq)
    moved = 0
    while limit is None or moved < limit:
        wanted = 10 if limit is None else min(10, limit - moved)
        batch = await _receive(sqs, dlq_url, wanted, MOVE_VISIBILITY_SECONDS)
        if not batch:
            break
        entries = []
        for index, raw in enumerate(batch):
            attributes = {
                key: {
                    "DataType": value.get("DataType", "String"),
                    "StringValue": value.get("StringValue", ""),
                }
                for key, value in (raw.get("MessageAttributes") or {}).items()
                if "StringValue" in value
            }
            redriven = int(attributes.get("redrive_count", {}).get("StringValue") or 0) + 1
            attributes["redrive_count"] = {"DataType": "Number", "StringValue": str(redriven)}
            entries.append(
                {"Id": str(index), "MessageBody": raw["Body"], "MessageAttributes": attributes}
            )
        sent = await sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        delivered = {entry["Id"] for entry in sent.get("Successful", [])}
        deletes = [
            {"Id": str(index), "ReceiptHandle": raw["ReceiptHandle"]}
            for index, raw in enumerate(batch)
            if str(index) in delivered
        ]
        if deletes:
            await sqs.delete_message_batch(QueueUrl=dlq_url, Entries=deletes)
        moved += len(deletes)
        if len(deletes) < len(batch):
            failed = [entry.get("Message", "") for entry in sent.get("Failed", [])]
            raise RuntimeError(f"could not send {len(failed)} messages back: {failed[:3]}")
    return moved


async def purge(aws: AWSClients, settings: Settings, name: str) -> int:
    """Delete everything in the DLQ of ``name``; about how many messages were there."""
    _, dlq = resolve(settings, name)
    sqs = await aws.client("sqs")
    url = await _url(sqs, dlq)
    before = int((await _attributes(sqs, url)).get("ApproximateNumberOfMessages", 0))
    await sqs.purge_queue(QueueUrl=url)
    return before
