"""Fan-out of the live event streams (``live:<topic>`` in Redis) to SSE clients.

One :class:`LiveHub` per API process. Its single reader task reads every stream that has at
least one subscriber in this process with one blocking ``XREAD`` and hands each event to the
subscribers' in-process queues, so a thousand browsers watching the board or their orders
cost one Redis connection, not a thousand. A stream is read only while someone here
subscribes to it; the last subscriber leaving drops it from the next ``XREAD``.

When a new stream is added the reader is woken through a process-private wake stream (an
``XADD`` interrupts the blocking ``XREAD``), so the first event reaches a new subscriber at
once. A new stream is read from its newest entry at the moment of subscription, and a client
that reconnects with ``Last-Event-ID`` gets what it missed from the stream's bounded history
(:meth:`LiveHub.replay`): subscribe first, replay second, and drop duplicates by id, and no
event falls between the two.

A subscriber that stops reading (a stalled connection) is not allowed to grow its queue: when
the queue is full the subscription is closed, and the client reconnects and replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pickup.core.errors import ServiceUnavailable
from pickup.live import stream_key

logger = logging.getLogger("pickup.live.hub")

EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
WAKE_PREFIX = "live-wake:"
UNREACHABLE = "Live updates are unavailable right now; the page will reconnect by itself."


def event_key(event_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = event_id.partition("-")
    return int(milliseconds), int(sequence or 0)


@dataclass(frozen=True)
class LiveEvent:
    id: str
    type: str
    data: str  # JSON text, as published


class Subscription:
    def __init__(self, hub: LiveHub, topic: str, queue_size: int) -> None:
        self.hub = hub
        self.topic = topic
        self.queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(queue_size)
        self.closed = False

    def offer(self, event: LiveEvent) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            logger.info("live.subscriber_overflow topic=%s", self.topic)
            self.close()

    def close(self) -> None:
        """End the subscription: the reader stops feeding it and its consumer sees ``None``."""
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)
        self.hub._forget(self)

    async def next(self, wait_seconds: float) -> LiveEvent | None:
        """The next event; ``None`` when closed. Raises ``TimeoutError`` after ``wait_seconds``."""
        return await asyncio.wait_for(self.queue.get(), wait_seconds)


@dataclass
class _Topic:
    position: str | None = None  # the id of the last entry handed out; None: not yet known
    subscribers: set[Subscription] = field(default_factory=set)


class LiveHub:
    def __init__(
        self,
        redis: Redis,
        *,
        block_ms: int = 2000,
        batch: int = 200,
        queue_size: int = 500,
    ) -> None:
        self.redis = redis
        self.block_ms = block_ms
        self.batch = batch
        self.queue_size = queue_size
        self._topics: dict[str, _Topic] = {}
        self._wake_key = f"{WAKE_PREFIX}{uuid.uuid4().hex}"
        self._wake_position = "0-0"
        self._has_topics = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # --- Life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-hub-reader")

    async def close(self) -> None:
        """Stop reading and end every subscription (their SSE responses finish)."""
        self._closed = True
        for topic in list(self._topics.values()):
            for subscription in list(topic.subscribers):
                subscription.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self._wake_key)

    # --- Subscriptions ------------------------------------------------------------------------

    @property
    def subscriber_count(self) -> int:
        return sum(len(topic.subscribers) for topic in self._topics.values())

    @property
    def topics(self) -> list[str]:
        return sorted(self._topics)

    async def subscribe(self, topic: str) -> Subscription:
        """Start receiving ``topic``'s new events (replay missed ones with :meth:`replay`)."""
        if self._closed:
            raise ServiceUnavailable(UNREACHABLE)
        subscription = Subscription(self, topic, self.queue_size)
        state = self._topics.get(topic)
        if state is not None:
            state.subscribers.add(subscription)
            return subscription
        state = self._topics[topic] = _Topic(subscribers={subscription})
        try:
            newest = await self.redis.xrevrange(stream_key(topic), count=1)
            state.position = newest[0][0] if newest else "0-0"
            await self._wake()
        except (RedisError, OSError) as error:
            subscription.close()
            raise ServiceUnavailable(UNREACHABLE) from error
        self._has_topics.set()
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        state = self._topics.get(subscription.topic)
        if state is None:
            return
        state.subscribers.discard(subscription)
        if not state.subscribers:
            del self._topics[subscription.topic]

    async def replay(self, topic: str, after: str, limit: int) -> tuple[list[LiveEvent], bool]:
        """Events of ``topic`` after id ``after`` still in history, and whether some were lost
        (trimmed from the bounded history before the client came back)."""
        key = stream_key(topic)
        try:
            entries = await self.redis.xrange(key, min=f"({after}", max="+", count=limit)
            oldest = await self.redis.xrange(key, min="-", max="+", count=1)
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(UNREACHABLE) from error
        # Conservative: when history starts after what the client saw, something may have
        # been trimmed; the client then reloads the state instead of trusting the replay.
        gap = bool(oldest) and event_key(oldest[0][0]) > event_key(after)
        return [_event(entry_id, fields) for entry_id, fields in entries], gap

    # --- The reader ---------------------------------------------------------------------------

    async def _wake(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1, approximate=False)
            pipe.expire(self._wake_key, 3600)
            await pipe.execute()

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._topics:
                self._has_topics.clear()
                await self._has_topics.wait()
                continue
            streams = {
                stream_key(topic): state.position
                for topic, state in self._topics.items()
                if state.position is not None
            }
            streams[self._wake_key] = self._wake_position
            try:
                result = await self.redis.xread(streams, count=self.batch, block=self.block_ms)
                failures = 0
            except (RedisError, OSError) as error:
                failures += 1
                logger.warning("live.read_failed attempt=%s error=%s", failures, error)
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
            self._dispatch(result or [])

    def _dispatch(self, result: Iterable[tuple[str, list[tuple[str, dict[str, str]]]]]) -> None:
        for key, entries in result:
            if not entries:
                continue
            if key == self._wake_key:
                self._wake_position = entries[-1][0]
                continue
            state = self._topics.get(key.removeprefix("live:"))
            if state is None:
                continue
            for entry_id, fields in entries:
                state.position = entry_id
                event = _event(entry_id, fields)
                for subscription in list(state.subscribers):
                    subscription.offer(event)


def _event(entry_id: str, fields: dict[str, str]) -> LiveEvent:
    return LiveEvent(id=entry_id, type=fields.get("type", "message"), data=fields.get("data", "{}"))
