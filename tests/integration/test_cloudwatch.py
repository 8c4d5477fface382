"""The CloudWatch publisher against the AWS emulator: what the processes publish is readable
back with the namespace and both dimensions (``Service``, ``Environment``).

Each test publishes to a namespace of its own, so test sessions sharing one emulator never
read each other's data.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pickup.adapters.aws import AWSClients
from pickup.observability import cloudwatch
from pickup.observability.cloudwatch import CloudWatchPublisher, publishing
from pickup.observability.metrics import ORDER_EVENTS
from pickup.observability.samplers import WORKER_SAMPLES, sample_once
from pickup.runtime import Resources
from pickup.settings import Settings
from tests.helpers import app_client, free_port, pickup_environment
from tests.integration.test_worker import open_shop, pipeline_settings


@pytest.fixture
def shop_settings(make_settings: Callable[..., Settings]) -> Settings:
    return pipeline_settings(
        make_settings,
        cloudwatch_metrics_enabled=True,
        cloudwatch_namespace=f"PickupTest/{uuid.uuid4().hex[:12]}",
        cloudwatch_flush_interval_seconds=3600,  # only the flushes the tests make
        rate_limit_checkout_per_minute=10_000,
    )


@pytest.fixture
async def shop(shop_settings: Settings, db_engine: Any, redis: Any) -> AsyncIterator[Resources]:
    async with open_shop(shop_settings) as resources:
        yield resources


def dimensions(settings: Settings, service: str) -> list[dict[str, str]]:
    return [
        {"Name": "Service", "Value": service},
        {"Name": "Environment", "Value": settings.env.value},
    ]


async def statistics(
    resources: Resources, name: str, service: str, *statistics: str
) -> dict[str, float]:
    """``statistics`` of ``name`` over the last hour, summed over the datapoints."""
    client = await resources.aws.client("cloudwatch")
    now = datetime.now(UTC)
    response = await client.get_metric_statistics(
        Namespace=resources.settings.cloudwatch_namespace,
        MetricName=name,
        Dimensions=dimensions(resources.settings, service),
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=list(statistics),
    )
    points = response["Datapoints"]
    result: dict[str, float] = {}
    for statistic in statistics:
        values = [point[statistic] for point in points if statistic in point]
        if statistic in ("Sum", "SampleCount"):
            result[statistic] = sum(values)
        elif values:
            result[statistic] = max(values) if statistic == "Maximum" else min(values)
    if points:
        result["Unit"] = points[0].get("Unit")  # type: ignore[assignment]
    return result


async def listed(resources: Resources, service: str) -> dict[str, list[dict[str, str]]]:
    """Every metric name in the test's namespace with ``service``'s dimensions."""
    client = await resources.aws.client("cloudwatch")
    response = await client.list_metrics(
        Namespace=resources.settings.cloudwatch_namespace,
        Dimensions=dimensions(resources.settings, service),
    )
    return {metric["MetricName"]: metric["Dimensions"] for metric in response["Metrics"]}


async def test_the_api_publishes_its_requests_latency_and_checkouts_when_it_stops(
    shop: Resources,
) -> None:
    async with app_client(shop.settings) as http:
        for _ in range(3):
            assert (await http.get("/api/menu")).status_code == 200
        response = await http.post(
            "/api/orders",
            json={
                "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
                "items": [{"product_id": "croissant", "quantity": 1}],
            },
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 202, response.text
    # The app's lifespan has ended: its publisher made its last flush.

    metrics = await listed(shop, "api")
    assert {"RequestCount", "ServerErrors", "RequestLatency", "OrdersPlaced"} <= set(metrics)
    assert sorted(metrics["OrdersPlaced"], key=lambda d: d["Name"]) == [
        {"Name": "Environment", "Value": "test"},
        {"Name": "Service", "Value": "api"},
    ]
    assert (await statistics(shop, "RequestCount", "api", "Sum"))["Sum"] == 4
    assert (await statistics(shop, "ServerErrors", "api", "Sum"))["Sum"] == 0
    placed = await statistics(shop, "OrdersPlaced", "api", "Sum")
    assert placed == {"Sum": 1, "Unit": "Count"}
    latency = await statistics(shop, "RequestLatency", "api", "SampleCount", "Maximum")
    assert latency["SampleCount"] == 4  # every request, as Values/Counts
    assert latency["Maximum"] > 0
    assert latency["Unit"] == "Milliseconds"
    assert await listed(shop, "worker") == {}


async def test_the_worker_publishes_sampled_gauges_and_zero_counts(shop: Resources) -> None:
    async with publishing(shop.aws, shop.settings, "worker") as publisher:
        assert publisher is not None
        await sample_once(shop, WORKER_SAMPLES)

    metrics = await listed(shop, "worker")
    assert {"OutOfStockProducts", "LowStockProducts", "ActiveReservations"} <= set(metrics)
    assert {"OrdersConfirmed", "MessagesHandled", "MessagesFailed"} <= set(metrics)
    assert "OutboxPending" not in metrics  # the API samples that one
    assert "RequestCount" not in metrics
    assert (await statistics(shop, "ActiveReservations", "worker", "Maximum"))["Maximum"] == 0
    assert (await statistics(shop, "MessagesHandled", "worker", "Sum"))["Sum"] == 0


async def test_counts_are_the_increase_since_the_last_flush(shop: Resources) -> None:
    publisher = CloudWatchPublisher(shop.aws, shop.settings, "worker")
    ORDER_EVENTS.labels("expired").inc(2)
    assert await publisher.flush()
    ORDER_EVENTS.labels("expired").inc(3)
    assert await publisher.flush()
    assert await publisher.flush()  # nothing new: a zero is not sent for this one

    expired = await statistics(shop, "OrdersExpired", "worker", "Sum", "SampleCount")
    assert expired["Sum"] == 5
    assert expired["SampleCount"] == 3  # zero-filled for the worker: 2, 3, then 0


async def test_a_failed_publish_is_logged_kept_and_sent_with_the_next_flush(
    shop: Resources, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = make_settings(
        aws_endpoint_url="http://127.0.0.1:9",  # the discard port: nothing listens
        cloudwatch_namespace=shop.settings.cloudwatch_namespace,
        cloudwatch_metrics_enabled=True,
    )
    async with AWSClients(unreachable) as broken:
        publisher = CloudWatchPublisher(broken, unreachable, "worker")
        cloudwatch._ACTIVE.append(publisher)
        try:
            cloudwatch.observe("PlacedToConfirmed", 4.2)
            cloudwatch.gauge("ActiveReservations", 7)
            ORDER_EVENTS.labels("confirmed").inc()
            with caplog.at_level(logging.WARNING):
                assert await publisher.flush() is False
            assert "cloudwatch.publish_failed service=worker" in caplog.text

            cloudwatch.observe("PlacedToConfirmed", 4.2)
            publisher._aws = shop.aws  # the endpoint is back
            assert await publisher.flush() is True
        finally:
            cloudwatch._ACTIVE.remove(publisher)

    confirmed = await statistics(shop, "OrdersConfirmed", "worker", "Sum")
    assert confirmed["Sum"] == 1
    delays = await statistics(shop, "PlacedToConfirmed", "worker", "SampleCount", "Maximum")
    assert (delays["SampleCount"], delays["Maximum"], delays["Unit"]) == (2, 4.2, "Seconds")
    held = await statistics(shop, "ActiveReservations", "worker", "Maximum")
    assert held["Maximum"] == 7


async def test_nothing_is_published_unless_the_setting_enables_it(
    make_settings: Callable[..., Settings], aws: AWSClients
) -> None:
    settings = make_settings(cloudwatch_namespace=f"PickupTest/{uuid.uuid4().hex[:12]}")
    assert settings.cloudwatch_metrics_enabled is False

    async with publishing(aws, settings, "notifier") as publisher:
        assert publisher is None
        cloudwatch.observe("RequestLatency", 12.0)

    client = await aws.client("cloudwatch")
    response = await client.list_metrics(Namespace=settings.cloudwatch_namespace)
    assert response["Metrics"] == []


async def test_a_worker_process_publishes_with_its_service_and_serves_metrics(
    shop: Resources,
) -> None:
    """``pickup worker`` as a real process: its samplers and publisher, wired in its root."""
    settings = shop.settings
    health_port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PICKUP_")},
        **pickup_environment(settings, PICKUP_ENV="test"),
        "PICKUP_HTTP_HOST": "127.0.0.1",
        "PICKUP_HEALTH_PORT": str(health_port),
        "PICKUP_LOG_LEVEL": "WARNING",
        "PICKUP_CLOUDWATCH_METRICS_ENABLED": "true",
        "PICKUP_CLOUDWATCH_NAMESPACE": settings.cloudwatch_namespace,
        "PICKUP_CLOUDWATCH_FLUSH_INTERVAL_SECONDS": "1",
        "PICKUP_METRICS_SAMPLE_INTERVAL_SECONDS": "1",
    }
    expected = {"LowStockProducts", "OutOfStockProducts", "ActiveReservations", "MessagesHandled"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pickup.cli.main", "worker", env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not expected <= set(metrics := await listed(shop, "worker")):
            assert process.returncode is None, f"pickup worker exited with {process.returncode}"
            assert time.monotonic() < deadline, f"not all published: {sorted(metrics)}"
            await asyncio.sleep(0.5)
        async with httpx.AsyncClient(timeout=10) as http:
            scraped = (await http.get(f"http://127.0.0.1:{health_port}/metrics")).text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=60)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    assert process.returncode == 0
    assert 'pickup_queue_depth{queue="orders"} 0.0' in scraped
    assert "pickup_low_stock_products 0.0" in scraped
