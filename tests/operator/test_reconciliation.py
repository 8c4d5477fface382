"""The operator reconciling InventoryThresholds against KMock and the AWS emulator."""

from __future__ import annotations

import asyncio
from typing import Any

from pickup.adapters.dynamodb import InventoryStore
from pickup.settings import Settings
from pickup_operator import builders
from tests.operator.conftest import (
    NAMESPACE,
    AlertInbox,
    OperatorHarness,
    add_product,
    eventually,
    threshold,
)

REF = f"{NAMESPACE}/croissant"


async def _product(store: InventoryStore, product_id: str = "croissant") -> Any:
    return await store.get_product(product_id, consistent_read=True)


async def test_creating_a_threshold_writes_it_to_the_product_and_patches_the_status(
    kube: OperatorHarness, store: InventoryStore, inbox: AlertInbox, operator_settings: Settings
) -> None:
    await add_product(store, available=40, on_hand=45, reserved=5)
    kube.seed(threshold())

    async with kube.running(operator_settings):
        await eventually(
            lambda: kube.condition("Synced").get("status") == "True", message="Synced=True"
        )
        product = await _product(store)
        status = kube.status()

    assert (product.low_stock_threshold, product.critical_threshold) == (10, 3)
    assert product.reorder_quantity == 48
    assert product.managed_by == REF
    assert status["available"] == 40 and status["reserved"] == 5 and status["onHand"] == 45
    assert status["level"] == "Ok"
    assert status["observedGeneration"] == 1
    assert kube.condition("Synced")["reason"] == "ThresholdsApplied"
    assert kube.condition("Ready")["status"] == "True"
    assert kube.obj()["metadata"]["finalizers"] == ["pickup.dev/inventory-threshold"]
    # Created on healthy stock: nothing to tell anyone.
    assert kube.events(reason="LevelChanged") == []
    assert await inbox.drain() == []


async def test_falling_stock_gives_one_event_and_one_alert_per_level_change(
    kube: OperatorHarness, store: InventoryStore, inbox: AlertInbox, operator_settings: Settings
) -> None:
    await add_product(store, available=20)
    kube.seed(threshold())

    async with kube.running(operator_settings):
        await eventually(lambda: kube.status().get("level") == "Ok", message="level Ok")

        await store.adjust("croissant", -12)  # 8 left: at or below lowStock 10
        await eventually(lambda: kube.status().get("level") == "Low", message="level Low")
        await eventually(lambda: len(kube.events("LevelChanged")) == 1, message="one Event")

        await store.adjust("croissant", -6)  # 2 left: at or below critical 3
        await eventually(lambda: kube.status().get("level") == "Critical", message="level Critical")
        await eventually(lambda: len(kube.events("LevelChanged")) == 2, message="two Events")
        # More timer ticks on unchanged stock: nothing new.
        alerts_at_end = await _settle_alerts(inbox)
        status = kube.status()

    events = kube.events("LevelChanged")
    assert [event["type"] for event in events] == ["Warning", "Warning"]
    assert "Ok -> Low" in events[0]["message"] and "alert sent" in events[0]["message"]
    assert "Low -> Critical" in events[1]["message"]
    assert events[0]["involvedObject"]["name"] == "croissant"

    assert [(body["level"], body["previous_level"]) for body, _ in alerts_at_end] == [
        ("Low", "Ok"),
        ("Critical", "Low"),
    ]
    body, attributes = alerts_at_end[1]
    assert attributes["event_type"]["StringValue"] == "inventory.threshold_crossed"
    assert body["type"] == "inventory.threshold_crossed" and body["version"] == 1
    assert body["product_id"] == "croissant" and body["product_name"] == "Croissant"
    assert body["available"] == 2
    assert (body["low_stock_threshold"], body["critical_threshold"]) == (10, 3)
    assert body["resource"] == REF
    assert body["notify"] == {"emails": ["kitchen@example.com"]}
    assert body["occurred_at"].endswith("Z")
    assert status["lastAlertLevel"] == "Critical"
    assert set(status["lastAlerts"]) == {"Low", "Critical"}


async def _settle_alerts(inbox: AlertInbox) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The alerts once a timer tick and a half passed without a new one."""
    seen = -1
    while seen != len(await inbox.drain()):
        seen = len(inbox.received)
        await asyncio.sleep(1.5)
    return inbox.received


async def test_a_level_flapping_inside_the_cooldown_is_evented_but_alerted_once(
    kube: OperatorHarness, store: InventoryStore, inbox: AlertInbox, operator_settings: Settings
) -> None:
    await add_product(store, available=11)
    kube.seed(threshold())

    async with kube.running(operator_settings):
        await eventually(lambda: kube.status().get("level") == "Ok", message="level Ok")
        await store.adjust("croissant", -2)  # 9: Low, alerted
        await eventually(lambda: len(kube.events("LevelChanged")) == 1, message="first Event")
        await store.restock("croissant", 5)  # 14: Ok again (an Event, no alert)
        await eventually(lambda: len(kube.events("LevelChanged")) == 2, message="recovery")
        await store.adjust("croissant", -5)  # 9: Low again inside the hour's cooldown
        await eventually(lambda: len(kube.events("LevelChanged")) == 3, message="third Event")
        alerts = await _settle_alerts(inbox)

    assert [body["level"] for body, _ in alerts] == ["Low"]
    messages = [event["message"] for event in kube.events("LevelChanged")]
    assert "Low -> Ok" in messages[1] and messages[1].startswith("croissant")
    assert "alert suppressed until" in messages[2]
    assert [event["type"] for event in kube.events("LevelChanged")] == [
        "Warning",
        "Normal",
        "Warning",
    ]


async def test_updating_the_spec_resyncs_the_product_and_bumps_observed_generation(
    kube: OperatorHarness, store: InventoryStore, operator_settings: Settings
) -> None:
    await add_product(store, available=8)
    kube.seed(threshold())

    async with kube.running(operator_settings):
        await eventually(lambda: kube.status().get("observedGeneration") == 1)
        assert kube.status()["level"] == "Low"

        # What the API server does on a spec change: a new generation.
        await kube.patch(
            "croissant",
            {"metadata": {"generation": 2}, "spec": {"lowStock": 6, "critical": 2}},
        )
        await eventually(
            lambda: kube.status().get("observedGeneration") == 2, message="generation 2"
        )
        product = await _product(store)
        status = kube.status()

    assert (product.low_stock_threshold, product.critical_threshold) == (6, 2)
    assert product.managed_by == REF
    assert status["level"] == "Ok"  # 8 is above the new lowStock
    assert kube.condition("Synced")["observedGeneration"] == 2


async def test_deleting_the_resource_runs_the_finalizer_and_clears_the_thresholds(
    kube: OperatorHarness, store: InventoryStore, operator_settings: Settings
) -> None:
    await add_product(store, available=30)
    kube.seed(threshold())

    async with kube.running(operator_settings):
        await eventually(
            lambda: kube.obj().get("metadata", {}).get("finalizers"), message="finalizer"
        )
        await eventually(lambda: kube.condition("Synced").get("status") == "True")
        assert (await _product(store)).managed_by == REF
        assert kube.exists()

        await kube.delete("croissant")
        await eventually(lambda: not kube.exists(), message="the resource gone")
        product = await _product(store)

    defaults = builders.released_thresholds()
    assert product.managed_by is None
    assert (product.low_stock_threshold, product.critical_threshold) == (
        defaults.low,
        defaults.critical,
    )
    assert product.reorder_quantity is None
    assert product.available == 30  # stock untouched


async def test_a_missing_product_is_reported_in_the_status_without_crashing(
    kube: OperatorHarness, store: InventoryStore, operator_settings: Settings
) -> None:
    await add_product(store, "bun", available=30)
    kube.seed(threshold("ghost", productId="no-such-product"))
    kube.seed(threshold("bun", productId="bun"))

    async with kube.running(operator_settings):
        await eventually(
            lambda: kube.condition("Synced", "ghost").get("reason") == "ProductNotFound",
            message="ProductNotFound",
        )
        # The operator goes on with the other resources.
        await eventually(lambda: kube.condition("Synced", "bun").get("status") == "True")
        ghost = kube.condition("Synced", "ghost")
        ready = kube.condition("Ready", "ghost")

    assert ghost["status"] == "False"
    assert "no-such-product does not exist" in ghost["message"]
    assert ready["status"] == "False" and ready["reason"] == "ProductNotFound"
    assert (await _product(store, "bun")).managed_by == f"{NAMESPACE}/bun"


async def test_a_product_created_later_is_picked_up_by_the_timer(
    kube: OperatorHarness, store: InventoryStore, operator_settings: Settings
) -> None:
    kube.seed(threshold())

    async with kube.running(operator_settings):
        await eventually(
            lambda: kube.condition("Synced").get("reason") == "ProductNotFound",
            message="ProductNotFound",
        )
        await add_product(store, available=2)
        await eventually(
            lambda: kube.condition("Synced").get("status") == "True", message="Synced=True"
        )
        status = kube.status()

    assert status["level"] == "Critical"
    assert (await _product(store)).managed_by == REF


async def test_a_product_managed_by_another_resource_is_left_alone(
    kube: OperatorHarness, store: InventoryStore, operator_settings: Settings
) -> None:
    await add_product(store, available=30, managed_by="other-team/croissant")
    kube.seed(threshold())

    async with kube.running(operator_settings):
        await eventually(
            lambda: kube.condition("Synced").get("reason") == "ManagedByAnotherResource"
        )
        product = await _product(store)

    assert product.managed_by == "other-team/croissant"
    assert product.low_stock_threshold == 5  # the catalogue's, not this spec's


async def test_a_restarted_operator_does_not_alert_a_level_it_already_alerted(
    kube: OperatorHarness, store: InventoryStore, inbox: AlertInbox, operator_settings: Settings
) -> None:
    await add_product(store, available=5)
    kube.seed(threshold())

    async with kube.running(operator_settings):
        await eventually(lambda: kube.status().get("lastAlertLevel") == "Low")
    async with kube.running(operator_settings):
        await eventually(lambda: len(kube.events("LevelChanged")) >= 1)
        alerts = await _settle_alerts(inbox)

    assert [body["level"] for body, _ in alerts] == ["Low"]
    assert len(kube.events("LevelChanged")) == 1


async def test_unreachable_aws_is_a_condition_and_a_retry_not_a_crash(
    kube: OperatorHarness, operator_settings: Settings
) -> None:
    # Nothing listens on port 9 (discard): every DynamoDB call fails to connect.
    unreachable = operator_settings.model_copy(update={"aws_endpoint_url": "http://127.0.0.1:9"})
    kube.seed(threshold())

    async with kube.running(unreachable):
        ready = await eventually(
            lambda: (
                kube.condition("Ready").get("reason") == "AWSUnavailable"
                and kube.condition("Ready")
            ),
            message="Ready=False AWSUnavailable",
        )

    assert ready["status"] == "False"
    assert "unreachable" in ready["message"]
    assert "level" not in kube.status()
