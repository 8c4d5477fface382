"""Small builders the test modules share."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from pickup.api.app import create_app
from pickup.core.inventory import ProductWithInventory
from pickup.settings import Settings, load_settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def offline_settings(**overrides: Any) -> Settings:
    """Settings for a unit test: nothing they name is ever connected to."""
    values: dict[str, Any] = {
        "database_url": "postgresql://pickup@db/pickup",
        "redis_url": "redis://cache:6379/0",
        "env": "test",
    }
    values.update(overrides)
    return load_settings(**values)


@contextmanager
def served_in_thread(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free port, in a thread of its own, once ``/healthz``
    answers; yields its base URL and stops it on exit."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("the app did not start within 30 s")
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


def pickup_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The ``PICKUP_*`` variables that give a ``pickup`` command (a CLI run or a process) the
    stores, emulator and resource prefix of ``settings``, plus ``extra``."""
    return {
        "PICKUP_ENV": settings.env.value,
        "PICKUP_DATABASE_URL": settings.database_url,
        "PICKUP_REDIS_URL": settings.redis_url,
        "PICKUP_AWS_ENDPOINT_URL": str(settings.aws_endpoint_url),
        "PICKUP_AWS_ACCESS_KEY_ID": "testing",
        "PICKUP_AWS_SECRET_ACCESS_KEY": "testing",
        "PICKUP_RESOURCE_PREFIX": settings.resource_prefix,
        **extra,
    }


def product(product_id: str, stock: int, **overrides: Any) -> ProductWithInventory:
    """A product with ``stock`` units on hand and none reserved."""
    values: dict[str, Any] = {
        "id": product_id,
        "name": product_id.replace("-", " ").title(),
        "category": "Bakery",
        "price_cents": 300,
        "on_hand": stock,
        "available": stock,
        "reserved": 0,
        "max_per_order": 10,
        "low_stock_threshold": 5,
        "critical_threshold": 2,
    }
    values.update(overrides)
    return ProductWithInventory(**values)


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a fresh app for ``settings``, its lifespan running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pickup.test") as client:
            yield client
