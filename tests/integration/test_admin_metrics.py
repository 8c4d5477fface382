"""Today's figures for staff, from real orders, history, queues and stock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from pickup.adapters.orm import NotificationLog, OrderStatusHistory
from pickup.admin.metrics import metrics
from pickup.core.orders import OrderStatus
from tests.integration.staff_helpers import Office, place_order


async def test_metrics_count_today_time_preparation_and_read_the_queues(
    office_app: Office, customer: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    resources = office_app.resources
    ids = [(await place_order(customer, [("croissant", 1)]))["order_id"] for _ in range(3)]
    for order_id in ids[:2]:
        version = 1
        for step in ("confirmed", "preparing", "ready"):
            response = await staff.put(
                f"/api/admin/orders/{order_id}/status",
                json={"status": step},
                headers={"If-Match": f'"{version}"'},
            )
            version = response.json()["version"]
    # Make the two preparations take 4 and 10 minutes.
    async with resources.sessions.begin() as session:
        rows = (
            await session.scalars(
                select(OrderStatusHistory).where(
                    OrderStatusHistory.to_status == OrderStatus.PREPARING
                )
            )
        ).all()
        for row, minutes in zip(sorted(rows, key=lambda r: str(r.order_id)), (4, 10), strict=True):
            row.created_at = datetime.now(UTC) - timedelta(minutes=minutes)
        session.add(
            NotificationLog(
                channel="sms", template="order.ready", recipient="+447700900123", status="failed"
            )
        )

    response = await staff.get("/api/admin/metrics")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["orders_today"] == 3
    assert body["orders_by_status"]["ready"] == 2
    assert body["orders_by_status"]["pending"] == 1
    assert body["orders_by_status"]["cancelled"] == 0
    assert body["preparation"]["orders"] == 2
    assert 6.9 <= body["preparation"]["average_minutes"] <= 7.1
    assert 9.9 <= body["preparation"]["p90_minutes"] <= 10.1
    assert sum(hour["orders"] for hour in body["orders_per_hour"]) == 3
    queues = {queue["name"]: queue for queue in body["queues"]}
    order_queue = queues[resources.settings.names.order_queue]
    assert order_queue["visible"] == 3 and order_queue["error"] is None  # three order.placed
    assert body["low_stock_count"] == 2  # tart (out) and loaf (low)
    assert body["notification_failures_today"] == 1


async def test_metrics_still_answer_when_the_queues_cannot_be_read(office_app: Office) -> None:
    current = office_app.resources.settings
    settings = type(current)(**{**current.model_dump(), "resource_prefix": "nothing-here"})
    resources = dataclasses.replace(office_app.resources, settings=settings)
    body = await metrics(resources)
    assert all(queue["visible"] is None for queue in body.model_dump()["queues"])
    assert body.orders_today == 0
