from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from pickup.api.serving import SERVING_GC_THRESHOLDS
from pickup.provisioning import bootstrap
from pickup.seed.loader import seed
from pickup.settings import Settings
from tests.helpers import app_client, pickup_environment

PROBLEM = "application/problem+json"


@pytest.fixture
async def seeded(settings: Settings, db_engine: Any, redis: Any) -> Settings:
    await bootstrap(settings)
    await seed(settings)
    return settings


@pytest.fixture
async def client(seeded: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(seeded) as client:
        yield client


async def test_liveness_touches_no_dependency(make_settings: Callable[..., Settings]) -> None:
    broken = make_settings(redis_url="redis://127.0.0.1:9/0", aws_endpoint_url="http://127.0.0.1:9")
    async with app_client(broken) as client:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


async def test_readiness_reports_every_dependency(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == {
        "database": True,
        "redis": True,
        "dynamodb": True,
        "sqs": True,
    }


async def test_readiness_names_the_dependency_that_is_down(
    seeded: Settings, make_settings: Callable[..., Settings]
) -> None:
    without_redis = make_settings(
        resource_prefix=seeded.resource_prefix, redis_url="redis://127.0.0.1:9/0"
    )
    async with app_client(without_redis) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["detail"].startswith("Unavailable: redis (")
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


async def test_readiness_fails_before_bootstrap(settings: Settings, db_engine: Any) -> None:
    async with app_client(settings) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert {name for name, check in body["checks"].items() if not check["ok"]} == {
        "dynamodb",
        "sqs",
    }


async def test_the_menu_groups_products_by_category_with_live_stock(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/menu")
    assert response.status_code == 200
    categories = response.json()["categories"]
    assert [category["name"] for category in categories][:2] == ["Coffee", "Tea & Cold Drinks"]
    products = {p["id"]: p for category in categories for p in category["products"]}
    assert len(products) == 26
    assert products["cold-brew"]["stock"] == {"status": "out_of_stock", "available": None}
    assert products["mocha"]["stock"]["status"] == "low_stock"
    assert products["mocha"]["stock"]["available"] == 3
    assert products["espresso"]["stock"]["status"] == "in_stock"


async def test_an_unknown_product_is_a_problem_response(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/menu/no-such-cake")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "https://pickup.dev/problems/unknown-product"
    assert body["status"] == 404
    assert "no-such-cake" in body["detail"]


async def test_a_malformed_product_id_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/menu/NOT_VALID!")
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "https://pickup.dev/problems/validation-error"
    assert body["errors"][0]["field"] == "path.product_id"


async def test_an_unknown_route_is_a_problem_response(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Not Found"


FREEZE_COUNTS = """
import asyncio, gc, json
from pickup.api.app import create_app
from pickup.api.main import create
from pickup.settings import load_settings

async def main():
    counts = {}
    app = create_app(load_settings())
    async with app.router.lifespan_context(app):
        counts["create_app"] = [gc.get_freeze_count(), gc.get_threshold()]
    app = create()
    async with app.router.lifespan_context(app):
        counts["server"] = [gc.get_freeze_count(), gc.get_threshold()]
    print(json.dumps(counts))

asyncio.run(main())
"""


async def test_the_server_process_tunes_its_garbage_collector_and_apps_alone_do_not(
    seeded: Settings,
) -> None:
    # In a process of its own: a frozen heap stays frozen for the rest of the process.
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PICKUP_")},
        **pickup_environment(seeded),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FREEZE_COUNTS, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    counts = json.loads(out.decode().strip().splitlines()[-1])
    assert counts["create_app"] == [0, list(gc.get_threshold())]
    frozen, thresholds = counts["server"]
    # Everything alive after start-up: modules, the app, its clients (over a hundred thousand).
    assert frozen > 100_000
    assert thresholds == list(SERVING_GC_THRESHOLDS) != list(gc.get_threshold())
