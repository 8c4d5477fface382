"""The live hub against real Redis: fan-out across processes, bounded replay, and slow
subscribers that are cut loose instead of holding memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pickup import live
from pickup.admin.live_hub import LiveHub


@pytest.fixture
async def hubs(redis: Any) -> AsyncIterator[list[LiveHub]]:
    """Two hubs on one Redis: two API processes."""
    created = [LiveHub(redis, block_ms=500, queue_size=3) for _ in range(2)]
    for hub in created:
        hub.start()
    yield created
    for hub in created:
        await hub.close()


async def test_an_event_reaches_subscribers_of_every_process(
    hubs: list[LiveHub], redis: Any
) -> None:
    subscriptions = [await hub.subscribe("order:42") for hub in hubs]
    event_id = await live.publish(redis, "order:42", "order.status", {"status": "ready"})
    for subscription in subscriptions:
        event = await subscription.next(2)
        assert event is not None and (event.id, event.type) == (event_id, "order.status")
    await live.publish(redis, live.STAFF, "other", {})  # another topic: nobody here listens
    for subscription in subscriptions:
        subscription.close()
    assert [hub.subscriber_count for hub in hubs] == [0, 0]


async def test_replay_returns_what_followed_and_flags_trimmed_history(
    hubs: list[LiveHub], redis: Any
) -> None:
    ids = [await live.publish(redis, "t", "e", {"n": n}, max_len=1000) for n in range(6)]
    events, gap = await hubs[0].replay("t", ids[2], 100)
    assert [event.id for event in events] == ids[3:] and not gap

    await redis.xtrim(live.stream_key("t"), maxlen=2, approximate=False)
    events, gap = await hubs[0].replay("t", ids[1], 100)
    assert [event.id for event in events] == ids[4:] and gap


async def test_a_subscriber_that_stops_reading_is_closed_not_buffered(
    hubs: list[LiveHub], redis: Any
) -> None:
    slow = await hubs[0].subscribe(live.STAFF)
    for n in range(5):  # the queue holds 3
        await live.publish(redis, live.STAFF, "e", {"n": n})
    for _ in range(150):  # nobody reads: the fourth event finds the queue full
        if slow.closed:
            break
        await asyncio.sleep(0.02)
    assert await slow.next(1) is None  # its consumer is told, then reconnects and replays
    assert hubs[0].subscriber_count == 0
