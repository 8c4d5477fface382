"""The operator reacting to stock events between its full checks (Redis ``live:staff``)."""

from __future__ import annotations

import asyncio

from pickup import live
from pickup.adapters.dynamodb import InventoryStore
from pickup.adapters.redis import create_redis
from pickup.settings import Settings
from tests.operator.conftest import OperatorHarness, add_product, eventually, threshold

LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"


async def _stock_changed(settings: Settings, product_id: str, available: int) -> None:
    """What the worker appends when the products table's stream shows a stock movement."""
    redis = create_redis(settings)
    try:
        await live.publish(
            redis,
            live.STAFF,
            "stock.changed",
            {"product_id": product_id, "available": available, "stock_status": "low"},
        )
    finally:
        await redis.aclose()


async def test_a_stock_event_gets_the_product_read_before_its_full_interval(
    kube: OperatorHarness, store: InventoryStore, operator_settings: Settings
) -> None:
    settings = operator_settings.model_copy(
        update={"operator_reconcile_interval_seconds": 3600, "operator_event_check_seconds": 0.5}
    )
    await add_product(store, available=20)
    kube.seed(threshold())

    async with kube.running(settings):
        await eventually(lambda: kube.status().get("level") == "Ok", message="level Ok")
        # The create handler is done (not waiting out a retry that would read the product).
        await eventually(
            lambda: LAST_HANDLED in (kube.obj()["metadata"].get("annotations") or {}),
            message="create handled",
        )

        # Without an event the next read is an hour away: six ticks later nothing moved.
        await store.adjust("croissant", -12)
        await asyncio.sleep(3)
        assert kube.status()["level"] == "Ok"
        assert kube.status()["available"] == 20

        # An event for another product changes nothing either.
        await _stock_changed(settings, "baguette", 1)
        await asyncio.sleep(1.5)
        assert kube.status()["level"] == "Ok"

        await _stock_changed(settings, "croissant", 8)
        await eventually(lambda: kube.status().get("level") == "Low", message="level Low")
        await eventually(lambda: len(kube.events("LevelChanged")) == 1, message="one Event")
        assert kube.status()["available"] == 8
