"""Today's figures for the staff dashboard.

PostgreSQL figures (orders, preparation times, notification failures) are required: without
the database the answer is a 503. The queue depths (SQS) and the low-stock count (DynamoDB)
are each best effort, so a dashboard still shows what it can while one service is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pickup.admin import repository
from pickup.admin.schemas import HourCount, Metrics, PrepTime, QueueDepth
from pickup.core.orders import OrderStatus
from pickup.orders.repository import database_errors
from pickup.runtime import Resources

logger = logging.getLogger("pickup.admin.metrics")

AWS_TIMEOUT_SECONDS = 2.0


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (p90: the smallest value at least 90% of values reach)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def prep_time(spans: list[tuple[datetime, datetime]]) -> PrepTime:
    minutes = [(end - start).total_seconds() / 60 for start, end in spans]
    p90 = percentile(minutes, 0.9)
    return PrepTime(
        orders=len(minutes),
        average_minutes=round(sum(minutes) / len(minutes), 1) if minutes else None,
        p90_minutes=round(p90, 1) if p90 is not None else None,
    )


def per_hour(created: list[datetime], day_start: datetime, now: datetime) -> list[HourCount]:
    """Orders in each local hour of today, from midnight to the current hour."""
    zone = day_start.tzinfo
    counts = Counter(moment.astimezone(zone).hour for moment in created)
    last_hour = now.astimezone(zone).hour
    return [
        HourCount(hour=f"{hour:02d}:00", orders=counts.get(hour, 0))
        for hour in range(last_hour + 1)
    ]


async def _queue_depth(resources: Resources, name: str) -> QueueDepth:
    try:
        async with asyncio.timeout(AWS_TIMEOUT_SECONDS):
            sqs = await resources.aws.client("sqs")
            url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
            attributes = (
                await sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )
            )["Attributes"]
    except Exception as error:  # best effort: a dashboard shows the rest
        logger.warning("metrics.queue_depth_failed queue=%s error=%s", name, error)
        return QueueDepth(name=name, visible=None, in_flight=None, error=type(error).__name__)
    return QueueDepth(
        name=name,
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


async def _low_stock_count(resources: Resources) -> int | None:
    try:
        async with asyncio.timeout(AWS_TIMEOUT_SECONDS):
            products = await resources.inventory.list_products()
    except Exception as error:
        logger.warning("metrics.low_stock_failed error=%s", error)
        return None
    return sum(1 for product in products if product.alert_level != "ok")


async def metrics(resources: Resources, now: datetime | None = None) -> Metrics:
    settings = resources.settings
    now = now or datetime.now(UTC)
    zone = ZoneInfo(settings.timezone)
    today = now.astimezone(zone).date()
    day_start = datetime.combine(today, time.min, tzinfo=zone)
    day_end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    names = settings.names
    queue_names = [
        names.order_queue,
        names.order_dlq,
        names.notifications_queue,
        names.notifications_dlq,
    ]
    aws_parts = asyncio.gather(
        *(_queue_depth(resources, name) for name in queue_names), _low_stock_count(resources)
    )
    detail = "Metrics are unavailable right now. Please try again in a moment."
    try:
        async with database_errors(detail), resources.sessions() as session:
            orders = await repository.orders_created_between(session, day_start, day_end)
            spans = await repository.preparation_spans(session, day_start)
            failures = await repository.notification_failures_since(session, day_start)
    except BaseException:
        aws_parts.cancel()
        raise
    *queues, low_stock_count = await aws_parts
    by_status = Counter(str(status) for status, _ in orders)
    return Metrics(
        date=today.isoformat(),
        timezone=settings.timezone,
        orders_today=len(orders),
        orders_by_status={str(status): by_status.get(str(status), 0) for status in OrderStatus},
        preparation=prep_time(spans),
        orders_per_hour=per_hour([created for _, created in orders], day_start, now),
        queues=queues,
        low_stock_count=low_stock_count,
        notification_failures_today=failures,
        generated_at=now,
    )
