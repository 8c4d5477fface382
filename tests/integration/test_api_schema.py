"""Property-based tests of the whole customer API from its own OpenAPI schema (schemathesis).

The app runs under uvicorn on a real port, on real PostgreSQL, Redis and the AWS emulator,
seeded with the sample menu. Every operation gets generated requests, valid and invalid; no
answer may be a 5xx, and every answer must match what the schema documents (status code,
content type, headers, body).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pickup.api.app import create_app
from pickup.provisioning import bootstrap
from pickup.seed.loader import seed
from pickup.settings import Settings
from tests.conftest import delete_aws_resources

CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def live_api(services: Any, database_url: str) -> Iterator[str]:
    from tests.conftest import load_settings_for

    settings: Settings = load_settings_for(
        services,
        database_url=database_url,
        opening_hours="mon-sun 00:00-24:00",
        rate_limit_cart_per_minute=100_000,
        rate_limit_checkout_per_minute=100_000,
    )
    asyncio.run(bootstrap(settings))
    asyncio.run(seed(settings, reset=True))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield base
    server.should_exit = True
    thread.join(timeout=15)
    delete_aws_resources(services.aws_endpoint, settings.resource_prefix)


PRODUCTS = ["espresso", "flat-white", "butter-croissant", "mocha", "cold-brew", "baguette"]


def with_real_products(case: Any) -> st.SearchStrategy[Any]:
    """Half the time, point generated product ids at products that exist, so the happy
    paths (an item added, an order placed) get exercised and not only the 404s."""

    def substitute(choice: tuple[bool, str]) -> Any:
        use_real, product_id = choice
        body = case.body
        if use_real and isinstance(body, dict):
            if isinstance(body.get("product_id"), str):
                body["product_id"] = product_id
            for item in body.get("items") or []:
                if isinstance(item, dict) and isinstance(item.get("product_id"), str):
                    item["product_id"] = product_id
                    item["quantity"] = 1
            body.pop("pickup_time", None)
        return case

    return st.tuples(st.booleans(), st.sampled_from(PRODUCTS)).map(substitute)


def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    live_api: str,
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api}/api/openapi.json")
    failures: dict[str, str] = {}
    tested = []
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)

        @given(case=operation.as_strategy().flatmap(with_real_products))
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            statuses.append(case.call_and_validate(checks=CHECKS).status_code)

        try:
            exercise()
        except Exception as error:  # collect every operation's failure, not just the first
            failures[operation.label] = str(error)[:2000]
    assert len(statuses) > 10 * len(tested)  # the generator really exercised each operation
    assert {200, 202, 422} <= set(statuses)
    assert "POST /api/orders" in tested
    assert "POST /api/cart/add" in tested
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
