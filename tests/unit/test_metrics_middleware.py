"""The request middleware on a small FastAPI app: in progress while a handler runs, a crash
counted as a 500 under its route, and every label bounded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client import REGISTRY

from pickup.api.metrics import PrometheusMiddleware


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def build(started: asyncio.Event, release: asyncio.Event) -> FastAPI:
    app = FastAPI()
    route = f"/unit/{uuid.uuid4().hex[:8]}"  # a route of this test's own: counters are global

    @app.get(route + "/slow/{item_id}")
    async def slow(item_id: str) -> dict[str, str]:
        started.set()
        await release.wait()
        return {"item": item_id}

    @app.get(route + "/wait")
    async def wait() -> dict[str, str]:
        started.set()
        await release.wait()
        return {"waited": "yes"}

    @app.get(route + "/stream")
    async def stream() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            started.set()
            await release.wait()

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get(route + "/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    app.add_middleware(PrometheusMiddleware)
    app.state.route = route
    return app


@pytest.fixture
def events() -> tuple[asyncio.Event, asyncio.Event]:
    return asyncio.Event(), asyncio.Event()


@pytest.fixture
def app(events: tuple[asyncio.Event, asyncio.Event]) -> FastAPI:
    return build(*events)


def client(app: FastAPI, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://unit.test")


async def test_a_request_is_in_progress_under_its_route_while_its_handler_runs(
    app: FastAPI, events: tuple[asyncio.Event, asyncio.Event]
) -> None:
    started, release = events
    template = app.state.route + "/slow/{item_id}"
    async with client(app) as http:
        request = asyncio.create_task(http.get(app.state.route + "/slow/42"))
        await started.wait()
        during = sample("pickup_http_requests_in_progress", method="GET", route=template)
        release.set()
        response = await request

    assert response.status_code == 200
    assert during == 1
    assert sample("pickup_http_requests_in_progress", method="GET", route=template) == 0
    assert sample("pickup_http_requests_total", method="GET", route=template, status="200") == 1


async def test_a_route_without_parameters_is_in_progress_from_its_second_request_on_too(
    app: FastAPI, events: tuple[asyncio.Event, asyncio.Event]
) -> None:
    # The first request teaches the middleware the path's route; the second is counted from
    # its start without watching the router, under the same label.
    started, release = events
    template = app.state.route + "/wait"
    during = []
    async with client(app) as http:
        for _ in range(2):
            started.clear()
            release.clear()
            request = asyncio.create_task(http.get(template))
            await started.wait()
            during.append(sample("pickup_http_requests_in_progress", method="GET", route=template))
            release.set()
            assert (await request).status_code == 200

    assert during == [1, 1]
    assert sample("pickup_http_requests_in_progress", method="GET", route=template) == 0
    assert sample("pickup_http_requests_total", method="GET", route=template, status="200") == 2
    assert sample("pickup_http_request_duration_seconds_count", method="GET", route=template) == 2


async def test_a_stream_stays_in_progress_until_it_ends_but_is_timed_at_its_start(
    app: FastAPI, events: tuple[asyncio.Event, asyncio.Event]
) -> None:
    # Straight through ASGI: httpx's ASGITransport would wait for the whole body.
    started, release = events
    template = app.state.route + "/stream"
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": template, "raw_path": template.encode(), "root_path": "",
        "query_string": b"", "headers": [], "server": ("unit.test", 80), "client": ("c", 1),
    }  # fmt: skip
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        await release.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    answering = asyncio.create_task(app(scope, receive, send))
    await started.wait()
    during = sample("pickup_http_requests_in_progress", method="GET", route=template)
    timed = sample("pickup_http_request_duration_seconds_count", method="GET", route=template)
    release.set()
    await answering

    assert sent[0]["type"] == "http.response.start"
    assert (during, timed) == (1, 1)
    assert sample("pickup_http_requests_in_progress", method="GET", route=template) == 0
    assert sample("pickup_http_requests_total", method="GET", route=template, status="200") == 1


async def test_a_handler_that_crashes_is_counted_as_a_500_of_its_route(app: FastAPI) -> None:
    template = app.state.route + "/boom"
    async with client(app, raise_app_exceptions=False) as http:
        # The second crash takes the way of a path whose route the middleware has learned.
        responses = [await http.get(template) for _ in range(2)]

    assert [response.status_code for response in responses] == [500, 500]
    assert sample("pickup_http_requests_total", method="GET", route=template, status="500") == 2
    assert sample("pickup_http_request_duration_seconds_count", method="GET", route=template) == 2
    assert sample("pickup_http_requests_in_progress", method="GET", route=template) == 0


async def test_unmatched_urls_and_unknown_methods_share_bounded_labels(app: FastAPI) -> None:
    before = sample("pickup_http_requests_total", method="GET", route="<unmatched>", status="404")
    async with client(app) as http:
        for _ in range(3):
            assert (await http.get(f"/nothing/{uuid.uuid4()}")).status_code == 404
        again = f"/nothing/{uuid.uuid4()}"  # an unmatched path is never learned as a route
        for _ in range(2):
            assert (await http.get(again)).status_code == 404
        odd = await http.request("PURGE", app.state.route + "/boom")

    after = sample("pickup_http_requests_total", method="GET", route="<unmatched>", status="404")
    assert after - before == 5
    assert sample("pickup_http_requests_total", method="GET", route=again, status="404") == 0
    assert odd.status_code == 405
    route = app.state.route + "/boom"
    assert sample("pickup_http_requests_total", method="OTHER", route=route, status="405") == 1
