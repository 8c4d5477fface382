"""Prometheus metrics move where the events happen, against real PostgreSQL, Redis and moto.

Counters are process-wide, so every test reads a sample before and after and checks the
difference. The last tests run ``pickup api --workers 2`` as a real process tree and scrape
its metrics port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pickup.adapters.orm import Order
from pickup.core.orders import Actor, OrderStatus
from pickup.notifier.process import notification_consumer
from pickup.observability.samplers import WORKER_SAMPLES, sample_once
from pickup.orders.transitions import change_status
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.process import order_consumer
from pickup.worker.sweeper import sweep_expired_reservations
from tests.helpers import app_client, free_port, pickup_environment
from tests.integration.test_worker import (
    FAST,
    consuming,
    eventually,
    open_shop,
    pipeline_settings,
    place,
)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Moves:
    """Samples read now, to compare with the same samples later."""

    def __init__(self, **samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = {key: sample(name, **labels) for key, (name, labels) in samples.items()}

    def __getitem__(self, key: str) -> float:
        name, labels = self.samples[key]
        return sample(name, **labels) - self.before[key]


def requests(method: str, route: str, status: int) -> tuple[str, dict[str, str]]:
    return (
        "pickup_http_requests_total",
        {"method": method, "route": route, "status": str(status)},
    )


def latency_count(method: str, route: str) -> tuple[str, dict[str, str]]:
    return ("pickup_http_request_duration_seconds_count", {"method": method, "route": route})


def event(name: str) -> tuple[str, dict[str, str]]:
    return ("pickup_order_events_total", {"event": name})


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(
        make_settings, rate_limit_checkout_per_minute=10_000, rate_limit_cart_per_minute=10_000
    )


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    async with open_shop(shop_settings) as resources:
        yield resources


@pytest.fixture
async def client(shop: Resources) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(shop.settings) as http:
        yield http


def order_body(quantity: int = 2) -> dict[str, Any]:
    return {
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"product_id": "croissant", "quantity": quantity}],
    }


async def checkout(http: httpx.AsyncClient, quantity: int = 2) -> httpx.Response:
    return await http.post(
        "/api/orders",
        json=order_body(quantity),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


# --- HTTP and checkout ----------------------------------------------------------------------


async def test_a_checkout_moves_the_placed_counter_and_its_routes_request_metrics_by_one(
    client: httpx.AsyncClient,
) -> None:
    moves = Moves(
        placed=event("placed"),
        answered=requests("POST", "/api/orders", 202),
        timed=latency_count("POST", "/api/orders"),
        conflicts=("pickup_checkout_stock_conflicts_total", {}),
    )

    response = await checkout(client)

    assert response.status_code == 202, response.text
    assert moves["placed"] == 1
    assert moves["answered"] == 1
    assert moves["timed"] == 1
    assert moves["conflicts"] == 0
    in_progress = sample("pickup_http_requests_in_progress", method="POST", route="/api/orders")
    assert in_progress == 0  # incremented while it ran, and back down


async def test_a_replayed_checkout_is_not_counted_as_a_second_order(
    client: httpx.AsyncClient,
) -> None:
    moves = Moves(placed=event("placed"), answered=requests("POST", "/api/orders", 202))
    key = str(uuid.uuid4())
    for _ in range(2):
        response = await client.post(
            "/api/orders", json=order_body(), headers={"Idempotency-Key": key}
        )
        assert response.status_code == 202

    assert moves["placed"] == 1
    assert moves["answered"] == 2


async def test_a_stock_conflict_moves_the_conflicts_counter_and_not_the_placed_one(
    client: httpx.AsyncClient,
) -> None:
    moves = Moves(
        placed=event("placed"),
        conflicts=("pickup_checkout_stock_conflicts_total", {}),
        refused=requests("POST", "/api/orders", 409),
    )

    response = await checkout(client, quantity=20)  # 30 croissants on hand: a second fails
    assert response.status_code == 202
    response = await checkout(client, quantity=20)

    assert response.status_code == 409, response.text
    assert response.json()["type"].endswith("insufficient-stock")
    assert moves["conflicts"] == 1
    assert moves["placed"] == 1
    assert moves["refused"] == 1


async def test_requests_are_labelled_by_route_template_never_by_raw_url(
    client: httpx.AsyncClient,
) -> None:
    accepted = (await checkout(client)).json()
    order_id = accepted["order_id"]
    moves = Moves(
        status=requests("GET", "/api/orders/status/{order_id}", 200),
        details=requests("GET", "/api/orders/{order_id}", 200),
        unmatched=requests("GET", "<unmatched>", 404),
        static=requests("GET", "/static/{path}", 200),
        odd_method=requests("OTHER", "/api/orders/{order_id}", 405),
    )

    assert (await client.get(f"/api/orders/status/{order_id}")).status_code == 200
    details = await client.get(
        f"/api/orders/{order_id}", params={"token": accepted["lookup_token"]}
    )
    assert details.status_code == 200, details.text
    assert (await client.get(f"/no/such/page/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/static/css/app.css")).status_code == 200
    assert (await client.request("BREW", f"/api/orders/{order_id}")).status_code == 405

    assert moves["status"] == 1
    assert moves["details"] == 1
    assert moves["unmatched"] == 1
    assert moves["static"] == 1
    assert moves["odd_method"] == 1
    exposition = generate_latest(REGISTRY).decode()
    assert order_id not in exposition
    assert "BREW" not in exposition


async def test_the_public_app_does_not_serve_metrics(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")

    assert response.status_code == 404
    assert "pickup_http_requests_total" not in response.text


async def test_cache_lookups_are_counted_as_hits_and_misses(client: httpx.AsyncClient) -> None:
    accepted = (await checkout(client)).json()
    moves = Moves(
        menu_hit=("pickup_cache_requests_total", {"cache": "menu", "result": "hit"}),
        menu_miss=("pickup_cache_requests_total", {"cache": "menu", "result": "miss"}),
        status_hit=("pickup_cache_requests_total", {"cache": "order_status", "result": "hit"}),
        status_miss=("pickup_cache_requests_total", {"cache": "order_status", "result": "miss"}),
    )

    for _ in range(2):
        assert (await client.get("/api/menu")).status_code == 200
        assert (await client.get(f"/api/orders/status/{accepted['order_id']}")).status_code == 200

    assert (moves["menu_miss"], moves["menu_hit"]) == (1, 1)
    assert (moves["status_miss"], moves["status_hit"]) == (1, 1)


# --- The pipeline ---------------------------------------------------------------------------


async def test_the_worker_confirming_an_order_counts_it_and_observes_placed_to_confirmed(
    shop: Resources,
) -> None:
    moves = Moves(
        confirmed=event("confirmed"),
        delays=("pickup_order_placed_to_confirmed_seconds_count", {}),
        acked=("pickup_queue_messages_total", {"queue": "orders", "outcome": "ack"}),
        lags=("pickup_queue_message_lag_seconds_count", {"queue": "orders"}),
    )
    started = time.time()
    placed = await place(shop)

    async with consuming(order_consumer(shop, **FAST)):

        async def confirmed() -> bool:
            return moves["confirmed"] >= 1 and moves["acked"] >= 1

        await eventually(confirmed)

    assert moves["confirmed"] == 1
    assert moves["delays"] == 1
    assert moves["acked"] == 1
    assert moves["lags"] == 1
    last_poll = sample("pickup_consumer_last_poll_timestamp_seconds", queue="orders")
    assert last_poll >= started
    assert placed["status"] == "pending"


async def test_the_notifier_counts_what_it_sent_by_channel_and_result(shop: Resources) -> None:
    moves = Moves(
        sent=("pickup_notifications_total", {"channel": "email", "result": "sent"}),
        failed=("pickup_notifications_total", {"channel": "email", "result": "failed"}),
        handled=("pickup_queue_messages_total", {"queue": "notifications", "outcome": "ack"}),
    )
    await place(shop)

    async with consuming(order_consumer(shop, **FAST), notification_consumer(shop, **FAST)):

        async def emailed() -> bool:
            return moves["sent"] >= 1 and moves["handled"] >= 1

        await eventually(emailed)

    assert moves["sent"] == 1  # the confirmation email
    assert moves["failed"] == 0


async def test_the_kitchen_steps_count_ready_picked_up_and_observe_confirmed_to_ready(
    shop: Resources,
) -> None:
    first = uuid.UUID((await place(shop))["order_id"])
    second = uuid.UUID((await place(shop))["order_id"])
    moves = Moves(
        ready=event("ready"),
        picked_up=event("picked_up"),
        cancelled=event("cancelled"),
        to_ready=("pickup_order_confirmed_to_ready_seconds_count", {}),
    )

    for status, actor in (
        (OrderStatus.CONFIRMED, Actor.SYSTEM),
        (OrderStatus.PREPARING, Actor.STAFF),
        (OrderStatus.READY, Actor.STAFF),
        (OrderStatus.PICKED_UP, Actor.STAFF),
    ):
        await change_status(shop, first, status, actor=actor)
    await change_status(shop, second, OrderStatus.CANCELLED, actor=Actor.STAFF)

    assert moves["ready"] == 1
    assert moves["picked_up"] == 1
    assert moves["cancelled"] == 1
    assert moves["to_ready"] == 1


async def test_the_sweeper_expiring_a_reservation_counts_it_once(shop: Resources) -> None:
    await place(shop)
    moves = Moves(expired=event("expired"), cancelled=event("cancelled"))
    later = datetime.now(UTC) + timedelta(days=1)

    assert await sweep_expired_reservations(shop, now=later) == 1
    assert await sweep_expired_reservations(shop, now=later) == 0

    assert moves["expired"] == 1
    assert moves["cancelled"] == 0


async def test_the_worker_samples_queue_depths_stock_and_reservations(shop: Resources) -> None:
    names = shop.settings.names
    sqs = await shop.aws.client("sqs")
    url = (await sqs.get_queue_url(QueueName=names.notifications_dlq))["QueueUrl"]
    for index in range(2):
        await sqs.send_message(QueueUrl=url, MessageBody=f'{{"n": {index}}}')
    await place(shop, items=[("bun", 6)])  # 10 buns, 4 left: under the threshold of 5
    # The placed order's message waits in the order queue (no worker runs here).

    await sample_once(shop, WORKER_SAMPLES)

    assert sample("pickup_queue_depth", queue="orders") == 1
    assert sample("pickup_queue_depth", queue="notifications") == 0
    assert sample("pickup_dlq_depth", queue="notifications") == 2
    assert sample("pickup_dlq_depth", queue="orders") == 0
    assert sample("pickup_active_reservations") == 1
    assert sample("pickup_low_stock_products") == 1
    assert sample("pickup_out_of_stock_products") == 0


async def test_a_failing_sample_keeps_the_last_value_and_the_others_still_update(
    shop: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    await sample_once(shop, WORKER_SAMPLES)
    assert sample("pickup_low_stock_products") == 0
    dynamodb = await shop.aws.client("dynamodb")
    await dynamodb.delete_table(TableName=shop.settings.names.products_table)
    await place_without_stock_check(shop)

    await sample_once(shop, WORKER_SAMPLES)

    assert sample("pickup_low_stock_products") == 0  # the last value, not a made-up one
    assert sample("pickup_active_reservations") == 1  # PostgreSQL still answered
    assert "metrics.sample_failed sample=sample_stock" in caplog.text


async def place_without_stock_check(resources: Resources) -> None:
    """An order row holding a reservation, written straight to PostgreSQL."""
    now = datetime.now(UTC)
    async with resources.sessions.begin() as session:
        session.add(
            Order(
                code=uuid.uuid4().hex[:6].upper(),
                status=OrderStatus.PENDING,
                customer_name="Ada Lovelace",
                customer_email="ada@example.com",
                pickup_at=now,
                subtotal_cents=100,
                total_cents=100,
                currency="GBP",
                lookup_token_hash="x" * 64,
            )
        )


# --- pickup api --workers 2 -------------------------------------------------------------------


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (item.name, tuple(sorted(item.labels.items()))): item.value
        for family in text_string_to_metric_families(text)
        for item in family.samples
    }


def healthz_count(samples: dict[Any, float]) -> float:
    key = (
        "pickup_http_requests_total",
        (("method", "GET"), ("route", "/healthz"), ("status", "200")),
    )
    return samples.get(key, 0.0)


@pytest.fixture
def api_process(shop_settings: Settings, tmp_path: Path) -> Any:
    http_port, metrics_port = free_port(), free_port()
    multiproc = tmp_path / "multiproc"
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PICKUP_")},
        **pickup_environment(shop_settings, PICKUP_ENV="test"),
        "PICKUP_LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    command = [
        sys.executable, "-m", "pickup.cli.main", "api", "--workers", "2",
        "--host", "127.0.0.1", "--port", str(http_port), "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(pids(multiproc, "counter")) < 2 or not answers(http_port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"pickup api did not start (exit code {process.poll()})")
            time.sleep(0.3)
        yield http_port, metrics_port, multiproc
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success
    except httpx.HTTPError:
        return False


def pids(multiproc: Path, kind: str) -> set[int]:
    """The processes with a sample file of ``kind`` (counter, gauge_livesum, ...)."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in multiproc.glob(f"{kind}_*.db")}


def test_pickup_api_with_two_workers_serves_all_their_samples_on_its_metrics_port(
    api_process: Any,
) -> None:
    http_port, metrics_port, multiproc = api_process
    workers = pids(multiproc, "counter")
    assert len(workers) == 2  # the parent removed the directory's old files, its own too
    before = healthz_count(scrape(metrics_port))

    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as http:
        for _ in range(30):  # a new connection each time, so both workers take some
            assert http.get("/healthz", headers={"Connection": "close"}).status_code == 200
        assert http.get("/metrics").status_code == 404  # never on the public port

    assert healthz_count(scrape(metrics_port)) - before == 30
    assert pids(multiproc, "counter") == workers

    # A worker that dies: its in-progress gauges are forgotten, its counts are kept.
    victim = min(pids(multiproc, "gauge_livesum"))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while victim in pids(multiproc, "gauge_livesum"):
        assert time.monotonic() < deadline, "the dead worker's live gauges were never reaped"
        after = scrape(metrics_port)
        time.sleep(0.2)
    assert healthz_count(after) - before == 30
