"""The worker's composition root: the order consumer, the sweeper, the stream consumer and
(outside the all-in-one development process, whose API runs one) an outbox relay."""

from __future__ import annotations

import asyncio
from typing import Any

from pickup.messaging.consumer import ConsumerConfig, SQSConsumer
from pickup.messaging.runner import Component, serve_until_signalled
from pickup.observability.samplers import WORKER_SAMPLES, run_samplers
from pickup.outbox.relay import OutboxRelay
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.worker.orders import order_handler
from pickup.worker.stream import StreamConsumer
from pickup.worker.sweeper import run_sweeper


def order_consumer(resources: Resources, **overrides: Any) -> SQSConsumer:
    settings = resources.settings
    config = ConsumerConfig(
        queue_name=settings.names.order_queue,
        label="orders",
        concurrency=settings.worker_concurrency,
        **overrides,
    )
    return SQSConsumer(resources.aws, order_handler(resources), config)


def worker_components(
    resources: Resources, stopping: asyncio.Event, *, relay: bool = True, **consumer: Any
) -> list[Component]:
    settings = resources.settings
    orders = order_consumer(resources, **consumer)
    stream = StreamConsumer(resources)
    components = [
        Component("order-consumer", orders.run, orders.stop),
        Component(
            "sweeper",
            lambda: run_sweeper(resources, settings.sweeper_interval_seconds, stopping),
            stopping.set,
        ),
        Component(
            "stream-consumer",
            lambda: stream.run(settings.stream_poll_interval_seconds, stopping),
            stopping.set,
        ),
        Component("metrics-sampler", lambda: run_samplers(resources, WORKER_SAMPLES)),
    ]
    if relay:
        outbox = OutboxRelay(resources)
        components.append(
            Component("outbox-relay", lambda: outbox.run(settings.outbox_relay_interval_seconds))
        )
    return components


async def run_worker(settings: Settings) -> None:
    await serve_until_signalled(settings, worker_components, process="worker")
