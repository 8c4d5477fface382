"""The notifier's composition root: the notifications consumer."""

from __future__ import annotations

import asyncio
from typing import Any

from pickup.messaging.consumer import ConsumerConfig, SQSConsumer
from pickup.messaging.runner import Component, serve_until_signalled
from pickup.notifier.handler import notification_handler
from pickup.runtime import Resources
from pickup.settings import Settings


def notification_consumer(resources: Resources, **overrides: Any) -> SQSConsumer:
    settings = resources.settings
    config = ConsumerConfig(
        queue_name=settings.names.notifications_queue,
        label="notifications",
        concurrency=settings.notifier_concurrency,
        **overrides,
    )
    return SQSConsumer(resources.aws, notification_handler(resources), config)


def notifier_components(
    resources: Resources, stopping: asyncio.Event, **consumer: Any
) -> list[Component]:
    notifications = notification_consumer(resources, **consumer)
    return [Component("notification-consumer", notifications.run, notifications.stop)]


async def run_notifier(settings: Settings) -> None:
    await serve_until_signalled(settings, notifier_components, process="notifier")
