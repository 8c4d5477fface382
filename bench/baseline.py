"""The bare baseline app: what the API's endpoints cost without the API.

Run by the bench under uvicorn with exactly the API's server settings, on the same Redis:

- ``GET /bare/menu`` answers the cached menu JSON, read from Redis in one ``HGET`` (the runner
  copies the API's cached menu bytes to :data:`MENU_KEY` first, so both serve the same bytes);
- ``POST /bare/cart`` reads the same JSON body and does one ``HINCRBY`` on a cart hash.

No validation, cookie, rate limit, stock check or error mapping: the ratio of the API's figure
to this one is the price of all of those together. The process is tuned as the API's is
(:func:`pickup.api.serving.tune_gc_for_serving`) and talks to Redis through the same client
(:func:`pickup.adapters.redis.redis_from_url`), so the ratio prices the work, not a setting
only one side has.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from pickup.adapters.redis import redis_from_url
from pickup.api.serving import tune_gc_for_serving

MENU_KEY = "bench:menu"


def create() -> FastAPI:
    redis_url = os.environ["BENCH_REDIS_URL"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The API's Redis client (commands packed by hiredis), not a slower one of its own.
        app.state.redis = redis_from_url(redis_url, max_connections=100)
        tune_gc_for_serving()  # as the API's server process does once it has started
        yield
        await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/bare/menu")
    async def bare_menu(request: Request) -> Response:
        body = await request.app.state.redis.hget(MENU_KEY, "body")
        return Response(body or b"{}", media_type="application/json")

    @app.post("/bare/cart")
    async def bare_cart(request: Request) -> Response:
        payload = json.loads(await request.body())
        cart = request.headers.get("x-cart-token") or secrets.token_urlsafe(24)
        quantity = await request.app.state.redis.hincrby(
            f"bench:cart:{cart}", payload["product_id"], int(payload["quantity"])
        )
        return Response(
            json.dumps({"product_id": payload["product_id"], "quantity": quantity}),
            media_type="application/json",
        )

    return app
