"""Periodic samples of what no single event tells: queue depths, stock, backlogs.

The worker samples the queues and their DLQs (``GetQueueAttributes``), the products low on or
out of stock (DynamoDB) and the orders holding a reservation (PostgreSQL); the API samples its
outbox backlog (its relay is the one that drains it). Never on a request path: each runs in
its own loop every ``PICKUP_METRICS_SAMPLE_INTERVAL_SECONDS``. Each sample is best effort: a
dependency that fails is logged and its gauges keep their last value, so a scrape during an
outage shows the last known figure rather than a misleading zero.

Each value goes to the Prometheus gauge and, when CloudWatch publishing is on, to its gauge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from pickup.admin.metrics import _queue_depth as queue_depth
from pickup.observability import cloudwatch, repository
from pickup.observability.metrics import (
    ACTIVE_RESERVATIONS,
    DLQ_DEPTH,
    LOW_STOCK_PRODUCTS,
    OUT_OF_STOCK_PRODUCTS,
    OUTBOX_PENDING,
    QUEUE_DEPTH,
)
from pickup.runtime import Resources

logger = logging.getLogger("pickup.observability.samplers")

SAMPLE_TIMEOUT_SECONDS = 10.0

Sample = Callable[[Resources], Awaitable[None]]


def _set(gauge: Gauge, value: float, cloudwatch_name: str | None = None) -> None:
    gauge.set(value)
    if cloudwatch_name is not None:
        cloudwatch.gauge(cloudwatch_name, value)


async def sample_queues(resources: Resources) -> None:
    """Visible messages in each work queue and in each DLQ, labelled like the consumers."""
    names = resources.settings.names
    queues = {
        "orders": (names.order_queue, names.order_dlq),
        "notifications": (names.notifications_queue, names.notifications_dlq),
    }
    depths = await asyncio.gather(
        *(queue_depth(resources, name) for pair in queues.values() for name in pair)
    )
    for index, label in enumerate(queues):
        queue, dlq = depths[2 * index], depths[2 * index + 1]
        # None: that queue could not be read (already logged); the gauge keeps its value.
        if queue.visible is not None:
            QUEUE_DEPTH.labels(label).set(queue.visible)
        if dlq.visible is not None:
            DLQ_DEPTH.labels(label).set(dlq.visible)


async def sample_stock(resources: Resources) -> None:
    """Products at or under their low-stock threshold, and those with nothing available."""
    products = await resources.inventory.list_products()
    levels = [product.alert_level for product in products]
    _set(LOW_STOCK_PRODUCTS, sum(level != "ok" for level in levels), "LowStockProducts")
    _set(OUT_OF_STOCK_PRODUCTS, sum(level == "out" for level in levels), "OutOfStockProducts")


async def sample_reservations(resources: Resources) -> None:
    async with resources.sessions() as session:
        held = await repository.active_reservations(session)
    _set(ACTIVE_RESERVATIONS, held, "ActiveReservations")


async def sample_outbox(resources: Resources) -> None:
    async with resources.sessions() as session:
        pending = await repository.outbox_pending(session)
    _set(OUTBOX_PENDING, pending, "OutboxPending")


WORKER_SAMPLES: tuple[Sample, ...] = (sample_queues, sample_stock, sample_reservations)
API_SAMPLES: tuple[Sample, ...] = (sample_outbox,)


async def sample_once(resources: Resources, samples: tuple[Sample, ...]) -> None:
    """Take every sample once, side by side; a failing one is logged and left alone."""

    async def guarded(sample: Sample) -> None:
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT_SECONDS):
                await sample(resources)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning(
                "metrics.sample_failed sample=%s error=%s: %s",
                sample.__name__,
                type(error).__name__,
                error,
            )

    await asyncio.gather(*(guarded(sample) for sample in samples))


async def run_samplers(
    resources: Resources, samples: tuple[Sample, ...], interval: float | None = None
) -> None:
    """Sample every ``interval`` seconds (the setting by default) until cancelled."""
    interval = interval or resources.settings.metrics_sample_interval_seconds
    while True:
        await sample_once(resources, samples)
        await asyncio.sleep(interval)
