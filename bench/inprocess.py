"""``python -m bench.inprocess``: where the cart add's CPU goes, measured without a server.

Builds the API as ``pickup api`` does (``pickup.api.main:create``, collector tuned) and the
bare baseline app in this one process, on the bench's services, and calls them as ASGI apps:
32 shoppers in flight, each adding as wrk's cart_add script does (one cart token kept for five
adds, products rotating). For each variant it reports the CPU time of this process per
request (median of alternating rounds) and the ratio of the bare endpoint's figure to it.
The variants price one part of the add at a time:

- ``bare``: ``POST /bare/cart`` (one ``HINCRBY``); ``bare-null``: a route of the bare app
  that answers at once;
- ``api``: ``POST /api/cart/add`` as served;
- ``api-null``: a route of the API app, where the add sits, that answers at once: the
  framework and middleware every route pays, against ``bare-null``;
- ``api-plain``: the add with its Lua script replaced by plain commands in one round trip
  (``HINCRBY`` of the line, then ``HGETALL`` of the cart): the same reply and view, without
  the script's checks (rate-limit hit, menu guard, stock cap, bounds) or ``EVALSHA``.

Figures are comparable with each other, not with a server's (no HTTP parsing, no sockets to
clients). docs/performance.md uses them to split the add's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from fastapi import Request, Response

from bench.stock import plentiful_products

ASGIApp = Callable[..., Awaitable[None]]
SHOPPERS = 32
ADDS_PER_CART = 5
VARIANTS = ("bare", "bare-null", "api", "api-null", "api-plain")


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """A request's scope as uvicorn builds it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "state": {},
    }


async def _post(app: ASGIApp, path: str, body: bytes, token: bytes | None) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if token is not None:
        headers.append((b"x-cart-token", token))
    request: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]
    never = asyncio.Event()
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        if request:
            return request.pop()
        await never.wait()  # nothing more arrives; a disconnect listener waits here
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = message["headers"]

    await app(_scope(path, headers), receive, send)
    return answer


async def _drive(app: ASGIApp, path: str, products: list[str], requests: int) -> float:
    """CPU seconds of this process per request, ``requests`` adds by ``SHOPPERS`` shoppers."""
    failures: list[int] = []

    async def shopper(adds: int) -> None:
        token: bytes | None = None
        sent_with_token = 0
        for n in range(adds):
            body = b'{"product_id":"%s","quantity":1}' % products[n % len(products)].encode()
            answer = await _post(app, path, body, token)
            if answer["status"] not in (200, 409):
                failures.append(answer["status"])
            if token is None:
                token = dict(answer["headers"]).get(b"x-cart-token")
                sent_with_token = 0
            else:
                sent_with_token += 1
                if sent_with_token >= ADDS_PER_CART - 1:
                    token = None

    started = time.process_time()
    await asyncio.gather(*(shopper(requests // SHOPPERS) for _ in range(SHOPPERS)))
    if failures:
        raise RuntimeError(f"{path}: unexpected statuses {sorted(set(failures))}")
    return (time.process_time() - started) / (requests // SHOPPERS * SHOPPERS)


def _answer_at_once(app: Any, path: str) -> None:
    """A route at ``path`` answering at once, placed where the app's cart add is (or first)."""

    async def null(request: Request) -> Response:
        await request.body()
        return Response(b"{}", media_type="application/json")

    routes = app.router.routes
    at = next((i for i, r in enumerate(routes) if getattr(r, "path", "") == "/api/cart/add"), 0)
    app.router.add_api_route(path, null, methods=["POST"])
    routes.insert(at, routes.pop())


def _plain_commands(resources: Any) -> None:
    """The cart store's add script replaced by plain commands with the same reply."""
    redis = resources.redis

    async def add(keys: list[str], args: list[Any]) -> list[Any]:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys[0], args[0], int(args[1]))
            pipe.hgetall(keys[0])
            wanted, lines = await pipe.execute()
        return [wanted, [item for pair in lines.items() for item in pair]]

    resources.carts._add_capped = add


async def _measure(products: list[str], rounds: int, requests: int) -> dict[str, Any]:
    from bench import baseline
    from pickup.api.main import create

    async with AsyncExitStack() as stack:
        bare = baseline.create()
        _answer_at_once(bare, "/bare/null")
        await stack.enter_async_context(bare.router.lifespan_context(bare))
        sides: dict[str, tuple[ASGIApp, str]] = {
            "bare": (bare, "/bare/cart"),
            "bare-null": (bare, "/bare/null"),
        }
        for variant in ("api", "api-null", "api-plain"):
            app = create()
            if variant == "api-null":
                _answer_at_once(app, "/api/cart/null")
            await stack.enter_async_context(app.router.lifespan_context(app))
            if variant == "api-plain":
                _plain_commands(app.state.resources)
            path = "/api/cart/null" if variant == "api-null" else "/api/cart/add"
            sides[variant] = (app, path)
        for app, path in sides.values():  # warm: the menu parsed, connections open
            await _drive(app, path, products, SHOPPERS * 10)
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        for n in range(rounds):
            order = list(sides)[n % len(sides) :] + list(sides)[: n % len(sides)]
            for name in order:
                cpu[name].append(await _drive(*sides[name], products, requests))
    bare_us = statistics.median(cpu["bare"]) * 1e6
    return {
        name: {
            "cpu_us_per_request": round(statistics.median(values) * 1e6, 1),
            "min_us": round(min(values) * 1e6, 1),
            "ratio": round(bare_us / (statistics.median(values) * 1e6), 3),
        }
        for name, values in cpu.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=6400, help="per variant and round")
    args = parser.parse_args(argv)
    from bench.env import bench_env

    with bench_env() as env:
        os.environ.update(env.api_environment(BENCH_REDIS_URL=env.redis_url))
        products = plentiful_products(env, 8)
        import uvloop

        figures = uvloop.run(_measure(products, args.rounds, args.requests))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
