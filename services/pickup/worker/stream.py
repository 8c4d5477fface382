"""The products table's DynamoDB Stream: stock changes into the ledger, alerts, caches, live.

Each poll reads every shard from its checkpoint (``stream_checkpoints``). One PostgreSQL
transaction per batch of records writes the ledger rows (``source_event_id`` is the record's
``eventID`` and unique, so a record read twice is written once), the outbox row of each
threshold alert (only with a ledger row that was new, so a replay raises no second alert) and
the shard's new checkpoint. A restart therefore resumes exactly after the last committed
batch: nothing is skipped and nothing is written twice. The checkpoint row is locked ``FOR
UPDATE SKIP LOCKED`` while a batch is read, so with several workers one reads a shard at a
time. After the commit: the alerts are sent, the menu cache is invalidated and each change is
pushed live (``stock.changed``, and ``stock.alert`` for a crossing) on the staff topic.

Checkpoints name the stream they belong to: a recreated table (a development reset) has a new
stream, whose shards are read from the start.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pickup import live
from pickup.menu.cache import invalidate_menu
from pickup.outbox.relay import OutboxRelay, outbox_message
from pickup.runtime import Resources
from pickup.worker import repository
from pickup.worker.stock_events import ALERT_TYPES, StockChange, stock_change

logger = logging.getLogger("pickup.worker.stream")

BATCH_LIMIT = 100
# Errors after which a shard's iterator is fetched anew from its checkpoint.
_STALE_ITERATOR = {"ExpiredIteratorException", "TrimmedDataAccessException"}


class StreamConsumer:
    def __init__(self, resources: Resources, *, batch_limit: int = BATCH_LIMIT) -> None:
        self.resources = resources
        self.batch_limit = batch_limit
        self._stream_arn: str | None = None
        # shard id -> (the sequence number its iterator continues after, the iterator)
        self._iterators: dict[str, tuple[str | None, str]] = {}
        self._finished: set[str] = set()
        self._trimmed: set[str] = set()
        self.last_poll: datetime | None = None

    async def _streams(self) -> Any:
        return await self.resources.aws.client("dynamodbstreams")

    async def stream_arn(self) -> str:
        if self._stream_arn is None:
            dynamodb = await self.resources.aws.client("dynamodb")
            table = await dynamodb.describe_table(
                TableName=self.resources.settings.names.products_table
            )
            arn = table["Table"].get("LatestStreamArn")
            if not arn:
                raise RuntimeError("the products table has no stream: run `pickup bootstrap`")
            self._stream_arn = arn
        return self._stream_arn

    async def _shards(self, arn: str) -> list[dict[str, Any]]:
        streams = await self._streams()
        shards: list[dict[str, Any]] = []
        params: dict[str, Any] = {"StreamArn": arn}
        while True:
            description = (await streams.describe_stream(**params))["StreamDescription"]
            shards += description.get("Shards", [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            params["ExclusiveStartShardId"] = last

    async def poll_once(self) -> int:
        """Read every shard once; how many stream records were processed."""
        try:
            arn = await self.stream_arn()
            shards = await self._shards(arn)
        except ClientError as error:
            self._stream_arn = None  # the table (and its stream) may have been recreated
            raise error
        known = {shard["ShardId"] for shard in shards}
        processed = 0
        for shard in shards:
            shard_id = shard["ShardId"]
            parent = shard.get("ParentShardId")
            if shard_id in self._finished or (parent in known and parent not in self._finished):
                continue  # a child is read only once its parent is read to the end
            processed += await self._read_shard(arn, shard_id)
        self.last_poll = datetime.now(UTC)
        return processed

    async def _iterator(self, arn: str, shard_id: str, after: str | None) -> str:
        cached = self._iterators.get(shard_id)
        if cached is not None and cached[0] == after:
            return cached[1]
        streams = await self._streams()
        params: dict[str, Any] = {"StreamArn": arn, "ShardId": shard_id}
        if after is None or shard_id in self._trimmed:
            params["ShardIteratorType"] = "TRIM_HORIZON"
            self._trimmed.discard(shard_id)
        else:
            params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        return str((await streams.get_shard_iterator(**params))["ShardIterator"])

    async def _read_shard(self, arn: str, shard_id: str) -> int:
        resources = self.resources
        now = datetime.now(UTC)
        changes: list[StockChange] = []
        alerts: list[tuple[StockChange, str]] = []
        outbox_ids: list[int] = []
        async with resources.sessions.begin() as session:
            checkpoint = await repository.lock_checkpoint(session, shard_id)
            if checkpoint is False:
                return 0  # another worker is reading this shard right now
            after = (
                checkpoint.sequence_number
                if checkpoint is not None and checkpoint.stream_arn == arn
                else None
            )
            try:
                iterator = await self._iterator(arn, shard_id, after)
                streams = await self._streams()
                response = await streams.get_records(ShardIterator=iterator, Limit=self.batch_limit)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                self._iterators.pop(shard_id, None)
                if code == "TrimmedDataAccessException":
                    # Records older than the stream keeps (24 h) are gone: read what is left.
                    logger.error("stream.trimmed shard=%s after=%s", shard_id, after)
                    self._trimmed.add(shard_id)
                if code in _STALE_ITERATOR:
                    return 0
                raise
            records = response.get("Records", [])
            next_iterator = response.get("NextShardIterator")
            last = after
            for record in records:
                last = str(record["dynamodb"]["SequenceNumber"])
                change = stock_change(record)
                if change is None:
                    continue
                if not await repository.add_ledger_entry(session, change.ledger_values()):
                    continue  # written before: a replay after a restart
                changes.append(change)
                if level := change.crossing:
                    message = outbox_message(
                        kind="sns",
                        destination=resources.settings.names.inventory_alerts_topic,
                        message_type=ALERT_TYPES[level],
                        payload=change.alert_payload(level),
                        dedupe=f"inventory.alert:{change.event_id}",
                    )
                    session.add(message)
                    await session.flush()
                    outbox_ids.append(message.id)
                    alerts.append((change, level))
            if last is not None and last != after:
                await repository.save_checkpoint(
                    session, shard_id=shard_id, stream_arn=arn, sequence_number=last, now=now
                )
        if next_iterator:
            self._iterators[shard_id] = (last, next_iterator)
        else:
            self._iterators.pop(shard_id, None)
            self._finished.add(shard_id)  # a closed shard, read to its end
        await self._after_commit(changes, alerts, outbox_ids)
        return len(records)

    async def _after_commit(
        self,
        changes: list[StockChange],
        alerts: list[tuple[StockChange, str]],
        outbox_ids: list[int],
    ) -> None:
        resources = self.resources
        for change, level in alerts:
            logger.info(
                "stock.alert product_id=%s level=%s available=%s",
                change.product_id,
                level,
                change.after.available,
            )
        if outbox_ids:
            try:
                await asyncio.wait_for(OutboxRelay(resources).flush(outbox_ids), timeout=5)
            except Exception:  # the relay loop sends them later
                logger.warning("stream.alert_send_deferred count=%s", len(outbox_ids))
        if not changes:
            return
        await invalidate_menu(resources.redis)
        max_len = resources.settings.live_history_size
        for change in changes:
            await live.publish(
                resources.redis, live.STAFF, "stock.changed", change.live_payload(), max_len=max_len
            )
        for change, level in alerts:
            await live.publish(
                resources.redis,
                live.STAFF,
                "stock.alert",
                change.alert_payload(level),
                max_len=max_len,
            )

    async def run(self, interval: float, stopping: asyncio.Event) -> None:
        """Poll until ``stopping`` is set; idle polls wait ``interval`` seconds."""
        failures = 0
        while not stopping.is_set():
            try:
                processed = await self.poll_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except (BotoCoreError, ClientError, OSError, RuntimeError) as error:
                failures += 1
                processed = 0
                logger.warning("stream.poll_failed error=%s", error)
            except Exception:  # a database outage must not end the loop
                failures += 1
                processed = 0
                logger.exception("stream.poll_failed")
            if processed:
                continue
            delay = interval if not failures else min(interval * 2**failures, 30.0)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            except TimeoutError:
                pass
