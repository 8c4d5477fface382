"""Live updates over a real socket (uvicorn on a free port, real Redis): events arrive in
order, a reconnect with Last-Event-ID replays what was missed, heartbeats flow, customers
see no personal data, and a client that goes away is forgotten."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event

from pickup import live
from pickup.admin.live_hub import LiveHub
from pickup.api.app import create_app
from pickup.core.errors import ServiceUnavailable
from pickup.runtime import Resources
from pickup.staff.auth import CSRF_HEADER
from tests.integration.staff_helpers import ADMIN_EMAIL, PASSWORD, assert_problem, place_order


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Live:
    def __init__(self, base: str, app: Any) -> None:
        self.base = base
        self.app = app

    @property
    def hub(self) -> LiveHub:
        return self.app.state.live_hub

    @property
    def resources(self) -> Resources:
        return self.app.state.resources


@pytest.fixture
async def served(office: Resources) -> AsyncIterator[Live]:
    app = create_app(office.settings)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started)
    yield Live(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def browser(served: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as client:
        yield client


async def signed_in(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/staff/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    client.headers[CSRF_HEADER] = response.json()["csrf_token"]


class Reader:
    """Parses an open text/event-stream into events (dicts) and counts heartbeats."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.heartbeats = 0
        self.retry: int | None = None

    async def next(self, seconds: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            event: dict[str, Any] = {}
            async for line in self.lines:
                if line == "":
                    if "data" in event:
                        event["data"] = json.loads(event["data"])
                        return event
                    event = {}
                elif line.startswith(":"):
                    self.heartbeats += 1
                elif line.startswith("retry: "):
                    self.retry = int(line[7:])
                else:
                    name, _, value = line.partition(": ")
                    event[name] = value
        raise AssertionError("the stream ended")

    async def next_of(self, event_type: str) -> dict[str, Any]:
        while (event := await self.next())["event"] != event_type:
            pass
        return event


async def publish(served: Live, topic: str, event_type: str, data: dict[str, Any]) -> str:
    event_id = await live.publish(served.resources.redis, topic, event_type, data)
    assert event_id is not None
    return event_id


async def wait_for(condition: Any, seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


async def test_staff_events_arrive_in_order_and_a_reconnect_replays_what_was_missed(
    served: Live, browser: httpx.AsyncClient
) -> None:
    await signed_in(browser)
    async with browser.stream("GET", "/api/admin/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        reader = Reader(response)
        await wait_for(lambda: served.hub.subscriber_count == 1)
        sent = [await publish(served, live.STAFF, "order.placed", {"n": n}) for n in range(5)]
        received = [await reader.next() for _ in range(5)]
        assert [event["id"] for event in received] == sent
        assert [event["data"]["n"] for event in received] == list(range(5))
        assert reader.retry == 3000
        last_seen = received[2]["id"]  # say the connection dropped after the third

    await wait_for(lambda: served.hub.subscriber_count == 0)
    later = await publish(served, live.STAFF, "stock.changed", {"n": 5})
    async with browser.stream(
        "GET", "/api/admin/events", headers={"Last-Event-ID": last_seen}
    ) as response:
        reader = Reader(response)
        replayed = [await reader.next() for _ in range(3)]
        assert [event["id"] for event in replayed] == [*sent[3:], later]
        live_one = await publish(served, live.STAFF, "order.status", {"n": 6})
        event = await reader.next()
        assert (event["id"], event["event"], event["data"]) == (live_one, "order.status", {"n": 6})


async def test_heartbeats_keep_an_idle_stream_open(
    served: Live, browser: httpx.AsyncClient
) -> None:
    await signed_in(browser)
    async with browser.stream("GET", "/api/admin/events") as response:
        reader = Reader(response)
        task = asyncio.create_task(reader.next(seconds=3))
        await asyncio.sleep(1.0)  # heartbeats every 0.3 s in these settings
        await publish(served, live.STAFF, "ping", {})
        await task
        assert reader.heartbeats >= 2


async def test_a_bad_last_event_id_is_refused_and_no_session_is_no_stream(
    served: Live, browser: httpx.AsyncClient
) -> None:
    assert_problem(await browser.get("/api/admin/events"), 401, "not-authenticated")
    await signed_in(browser)
    response = await browser.get("/api/admin/events", headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 422
    assert served.hub.subscriber_count == 0


async def test_the_customer_stream_carries_status_and_times_only(
    served: Live, browser: httpx.AsyncClient
) -> None:
    placed = await place_order(browser, [("croissant", 1)], phone="+447700900123")
    order_id, token = placed["order_id"], placed["lookup_token"]
    url = f"/api/orders/{order_id}/events"
    assert_problem(await browser.get(url), 404, "order-not-found")
    assert_problem(await browser.get(url, params={"token": "wrong"}), 404, "order-not-found")

    async with httpx.AsyncClient(base_url=served.base, timeout=10) as kitchen:
        await signed_in(kitchen)
        async with browser.stream("GET", url, params={"token": token}) as response:
            reader = Reader(response)
            first = await reader.next()
            assert first["event"] == "order.status" and "id" not in first  # the snapshot
            assert first["data"]["status"] == "pending"
            for step, version in (("confirmed", 1), ("preparing", 2)):
                changed = await kitchen.put(
                    f"/api/admin/orders/{order_id}/status",
                    json={"status": step},
                    headers={"If-Match": f'"{version}"'},
                )
                assert changed.status_code == 200, changed.text
                event = await reader.next()
                assert event["data"]["status"] == step
                assert set(event["data"]) == {
                    "order_id",
                    "status",
                    "pickup_at",
                    "estimated_ready_at",
                    "label",
                    "message",
                    "final",
                }
            last_seen = event["id"]

        # X-Order-Token works too, and a reconnect replays instead of sending a snapshot.
        await kitchen.put(
            f"/api/admin/orders/{order_id}/status",
            json={"status": "ready"},
            headers={"If-Match": '"3"'},
        )
        async with browser.stream(
            "GET", url, headers={"X-Order-Token": token, "Last-Event-ID": last_seen}
        ) as response:
            event = await Reader(response).next()
            assert event["data"]["status"] == "ready" and "id" in event
    body = json.dumps(event)
    assert "grace" not in body.lower() and "+4477" not in body


class OrderLookups:
    """Counts the statements reading the orders table on an engine while entered."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine.sync_engine
        self.count = 0

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM orders" in statement:
            self.count += 1

    def __enter__(self) -> OrderLookups:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def test_a_customer_subscription_looks_the_order_up_once(
    served: Live, browser: httpx.AsyncClient
) -> None:
    placed = await place_order(browser, [("croissant", 1)])
    url = f"/api/orders/{placed['order_id']}/events"
    with OrderLookups(served.resources.engine) as lookups:
        async with browser.stream("GET", url, params={"token": placed["lookup_token"]}) as fresh:
            first = await Reader(fresh).next()
        assert first["event"] == "order.status" and first["data"]["status"] == "pending"
        assert lookups.count == 1

        assert_problem(await browser.get(url, params={"token": "wrong"}), 404, "order-not-found")
        assert lookups.count == 2

        topic = live.order_topic(placed["order_id"])
        seen = await publish(served, topic, "order.status", {"status": "confirmed"})
        missed = await publish(served, topic, "order.status", {"status": "preparing"})
        headers = {"X-Order-Token": placed["lookup_token"], "Last-Event-ID": seen}
        async with browser.stream("GET", url, headers=headers) as reconnected:
            replayed = await Reader(reconnected).next()
        assert replayed["id"] == missed and replayed["data"]["status"] == "preparing"
        assert lookups.count == 3
    await wait_for(lambda: served.hub.subscriber_count == 0)


async def test_with_the_live_hub_down_a_wrong_token_is_still_404(
    served: Live, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed = await place_order(browser, [("croissant", 1)])
    url = f"/api/orders/{placed['order_id']}/events"

    async def unreachable(topic: str) -> Any:
        raise ServiceUnavailable("live updates are unreachable")

    monkeypatch.setattr(served.hub, "subscribe", unreachable)
    assert_problem(await browser.get(url, params={"token": "wrong"}), 404, "order-not-found")
    refused = await browser.get(url, params={"token": placed["lookup_token"]})
    assert_problem(refused, 503, "service-unavailable")


async def test_one_reader_serves_many_subscribers_and_forgets_those_that_leave(
    served: Live, browser: httpx.AsyncClient
) -> None:
    hub = served.hub
    await signed_in(browser)
    streams = [browser.stream("GET", "/api/admin/events") for _ in range(20)]
    responses = [await stream.__aenter__() for stream in streams]
    try:
        await wait_for(lambda: hub.subscriber_count == 20)
        assert hub.topics == [live.STAFF]  # one stream read once, however many listen
        event_id = await publish(served, live.STAFF, "alert", {"level": "critical"})
        # Kept referenced: a collected reader would close its connection.
        readers = [Reader(response) for response in responses]
        events = await asyncio.gather(*(reader.next_of("alert") for reader in readers))
        assert {event["id"] for event in events} == {event_id}
    finally:
        for stream in streams[:15]:
            await stream.__aexit__(None, None, None)
    await wait_for(lambda: hub.subscriber_count == 5)
    for stream in streams[15:]:
        await stream.__aexit__(None, None, None)
    await wait_for(lambda: hub.subscriber_count == 0)
    assert hub.topics == []
