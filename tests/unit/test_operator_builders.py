"""The operator's pure decisions and builders (pickup_operator.builders)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pickup.core.inventory import ProductWithInventory
from pickup_operator import builders
from pickup_operator.builders import (
    AlertDecision,
    Condition,
    InvalidSpec,
    Level,
    ThresholdSpec,
    decide_alert,
    level_for,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SPEC = ThresholdSpec(product_id="croissant", low_stock=10, critical=3, reorder_quantity=48)
REF = "shop/croissant"


def product(**changes: Any) -> ProductWithInventory:
    values: dict[str, Any] = {
        "id": "croissant",
        "name": "Croissant",
        "price_cents": 250,
        "on_hand": 12,
        "reserved": 2,
        "available": 10,
        "low_stock_threshold": 10,
        "critical_threshold": 3,
        "reorder_quantity": 48,
        "managed_by": REF,
    }
    values.update(changes)
    return ProductWithInventory(**values)


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        (50, Level.OK),
        (11, Level.OK),
        (10, Level.LOW),
        (4, Level.LOW),
        (3, Level.CRITICAL),
        (1, Level.CRITICAL),
        (0, Level.OUT_OF_STOCK),
    ],
)
def test_the_level_counts_both_thresholds_as_inclusive(available: int, expected: Level) -> None:
    assert level_for(available, low_stock=10, critical=3) is expected


def test_a_critical_of_zero_goes_straight_from_low_to_out_of_stock() -> None:
    assert level_for(1, low_stock=5, critical=0) is Level.LOW
    assert level_for(0, low_stock=5, critical=0) is Level.OUT_OF_STOCK


def test_a_complete_spec_is_read_with_its_defaults() -> None:
    spec = ThresholdSpec.from_spec({"productId": "bun", "lowStock": 5, "critical": 1})
    assert spec == ThresholdSpec("bun", 5, 1, reorder_quantity=0, cooldown_seconds=3600, notify={})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lowStock": 5, "critical": 1}, "productId"),
        ({"productId": "Bad Id", "lowStock": 5, "critical": 1}, "productId"),
        ({"productId": "bun", "critical": 1}, "lowStock is required"),
        ({"productId": "bun", "lowStock": -1, "critical": 0}, "lowStock"),
        ({"productId": "bun", "lowStock": 5, "critical": 5}, "must be below"),
        ({"productId": "bun", "lowStock": 5, "critical": 9}, "must be below"),
        ({"productId": "bun", "lowStock": 5, "critical": 1, "cooldownSeconds": -1}, "cooldown"),
        ({"productId": "bun", "lowStock": True, "critical": 0}, "lowStock"),
    ],
)
def test_a_spec_the_operator_cannot_apply_is_refused_saying_why(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSpec, match=message):
        ThresholdSpec.from_spec(spec)


@pytest.mark.parametrize(
    ("changes", "applied"),
    [
        ({}, True),
        ({"low_stock_threshold": 9}, False),
        ({"critical_threshold": 2}, False),
        ({"reorder_quantity": None}, False),
        ({"managed_by": None}, False),
        ({"managed_by": "shop/other"}, False),
        ({"available": 0, "on_hand": 2}, True),  # stock is not a threshold
    ],
)
def test_thresholds_are_rewritten_only_when_they_differ(
    changes: dict[str, Any], applied: bool
) -> None:
    assert builders.thresholds_applied(product(**changes), SPEC, REF) is applied


@pytest.mark.parametrize(
    ("managed_by", "other"),
    [(None, None), (REF, None), ("shop/rival", "shop/rival")],
)
def test_only_another_resource_counts_as_a_conflict(
    managed_by: str | None, other: str | None
) -> None:
    assert builders.managed_by_another(product(managed_by=managed_by), REF) == other


def test_released_thresholds_are_the_catalogue_defaults_with_no_manager() -> None:
    released = builders.released_thresholds()
    fresh = ProductWithInventory(id="x", name="X", price_cents=1)
    assert (released.low, released.critical) == (
        fresh.low_stock_threshold,
        fresh.critical_threshold,
    )
    assert released.managed_by is None and released.reorder_quantity is None


@pytest.mark.parametrize(("retry", "delay"), [(0, 2.0), (1, 4.0), (3, 16.0), (10, 120.0)])
def test_transient_failures_back_off_exponentially_up_to_a_cap(retry: int, delay: float) -> None:
    assert builders.retry_delay(retry) == delay


COOLDOWN = 600


@pytest.mark.parametrize(
    ("previous", "current", "last_alerts", "expected"),
    [
        (None, Level.OK, {}, AlertDecision(False, False, "unchanged")),
        (Level.LOW, Level.LOW, {}, AlertDecision(False, False, "unchanged")),
        (None, Level.LOW, {}, AlertDecision(True, True, "alert")),
        (Level.OK, Level.LOW, {}, AlertDecision(True, True, "alert")),
        (Level.LOW, Level.CRITICAL, {Level.LOW: NOW}, AlertDecision(True, True, "alert")),
        (Level.CRITICAL, Level.OUT_OF_STOCK, {}, AlertDecision(True, True, "alert")),
        (Level.LOW, Level.OK, {Level.LOW: NOW}, AlertDecision(True, False, "recovered")),
        (
            Level.OK,
            Level.LOW,
            {Level.LOW: NOW - timedelta(seconds=60)},
            AlertDecision(True, False, "cooldown", NOW + timedelta(seconds=COOLDOWN - 60)),
        ),
        (
            Level.OK,
            Level.LOW,
            {Level.LOW: NOW - timedelta(seconds=COOLDOWN)},
            AlertDecision(True, True, "alert"),
        ),
        (
            Level.CRITICAL,
            Level.LOW,
            {Level.CRITICAL: NOW - timedelta(seconds=1)},
            AlertDecision(True, True, "alert"),
        ),
    ],
    ids=[
        "first-seen-ok",
        "unchanged",
        "first-seen-low",
        "ok-to-low",
        "low-to-critical",
        "critical-to-out",
        "recovery",
        "low-again-in-cooldown",
        "low-again-after-cooldown",
        "cooldown-is-per-level",
    ],
)
def test_a_level_change_is_evented_and_alerted_at_most_once_per_level_and_cooldown(
    previous: Level | None,
    current: Level,
    last_alerts: dict[Level, datetime],
    expected: AlertDecision,
) -> None:
    assert decide_alert(previous, current, last_alerts, NOW, COOLDOWN) == expected


def test_the_alert_carries_what_the_notifier_needs() -> None:
    alert = builders.build_alert(
        product=product(available=3, on_hand=5),
        spec=ThresholdSpec("croissant", 10, 3, 48, notify={"emails": ["kitchen@example.com"]}),
        ref=REF,
        uid="uid-1",
        level=Level.CRITICAL,
        previous=Level.LOW,
        occurred_at=NOW,
    )
    assert alert == {
        "type": "inventory.threshold_crossed",
        "version": 1,
        "alert_id": builders.alert_id("uid-1", Level.CRITICAL, NOW),
        "product_id": "croissant",
        "product_name": "Croissant",
        "level": "Critical",
        "previous_level": "Low",
        "available": 3,
        "reserved": 2,
        "on_hand": 5,
        "low_stock_threshold": 10,
        "critical_threshold": 3,
        "reorder_quantity": 48,
        "resource": "shop/croissant",
        "notify": {"emails": ["kitchen@example.com"]},
        "occurred_at": "2026-11-20T12:00:00Z",
    }
    assert builders.alert_attributes() == {
        "event_type": {"DataType": "String", "StringValue": "inventory.threshold_crossed"}
    }


def test_alert_ids_are_stable_and_differ_per_level_and_time() -> None:
    first = builders.alert_id("uid-1", Level.LOW, NOW)
    assert first == builders.alert_id("uid-1", Level.LOW, NOW)
    assert first != builders.alert_id("uid-1", Level.CRITICAL, NOW)
    assert first != builders.alert_id("uid-1", Level.LOW, NOW + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("decision", "current", "kind", "suffix"),
    [
        (AlertDecision(True, True, "alert"), Level.LOW, "Warning", "; alert sent"),
        (AlertDecision(True, False, "recovered"), Level.OK, "Normal", "critical 3)"),
        (
            AlertDecision(True, False, "cooldown", NOW),
            Level.LOW,
            "Warning",
            "suppressed until 2026-11-20T12:00:00Z (cooldown)",
        ),
    ],
)
def test_the_event_says_what_changed_and_what_happened_to_the_alert(
    decision: AlertDecision, current: Level, kind: str, suffix: str
) -> None:
    event_kind, message = builders.event_message(
        product(available=7, on_hand=9), SPEC, Level.OK, decision, current
    )
    assert event_kind == kind
    assert message.startswith(f"croissant: Ok -> {current} (7 available; low 10, critical 3)")
    assert message.endswith(suffix)


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = builders.merge_conditions(
        None, [Condition("Synced", True, "ThresholdsApplied", "ok")], now=NOW, generation=1
    )
    later = NOW + timedelta(minutes=5)
    same = builders.merge_conditions(
        first, [Condition("Synced", True, "ThresholdsApplied", "again")], now=later, generation=2
    )
    flipped = builders.merge_conditions(
        same, [Condition("Synced", False, "ProductNotFound", "gone")], now=later, generation=2
    )
    assert same[0]["lastTransitionTime"] == "2026-11-20T12:00:00Z"
    assert same[0]["message"] == "again" and same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "2026-11-20T12:05:00Z"
    assert flipped[0]["status"] == "False" and flipped[0]["reason"] == "ProductNotFound"


def test_conditions_of_other_types_are_kept_and_sorted() -> None:
    merged = builders.merge_conditions(
        [{"type": "Synced", "status": "True", "reason": "ThresholdsApplied"}],
        builders.unavailable_conditions("DynamoDB is unreachable"),
        now=NOW,
        generation=None,
    )
    assert [(c["type"], c["status"], c["reason"]) for c in merged] == [
        ("Ready", "False", "AWSUnavailable"),
        ("Synced", "True", "ThresholdsApplied"),
    ]


def test_the_alert_status_records_the_time_of_each_level() -> None:
    earlier = NOW - timedelta(hours=1)
    status = builders.alert_status({Level.LOW: earlier}, Level.CRITICAL, NOW)
    assert status == {
        "lastAlertTime": "2026-11-20T12:00:00Z",
        "lastAlertLevel": "Critical",
        "lastAlerts": {"Critical": "2026-11-20T12:00:00Z", "Low": "2026-11-20T11:00:00Z"},
    }
    assert builders.parse_alert_times(status["lastAlerts"]) == {
        Level.LOW: earlier,
        Level.CRITICAL: NOW,
    }


@pytest.mark.parametrize(
    "raw", [None, "junk", {"Nope": "2026-11-20T12:00:00Z"}, {"Low": "yesterday"}, {"Low": 5}]
)
def test_unreadable_alert_times_are_ignored(raw: object) -> None:
    assert builders.parse_alert_times(raw) == {}


def test_the_stock_status_has_the_printer_columns_fields() -> None:
    assert builders.stock_status(product(), Level.LOW, generation=3) == {
        "productName": "Croissant",
        "available": 10,
        "reserved": 2,
        "onHand": 12,
        "level": "Low",
        "observedGeneration": 3,
    }


@pytest.mark.parametrize(
    ("namespace", "ref"), [("shop", "shop/croissant"), (None, "croissant"), ("", "croissant")]
)
def test_managed_by_names_the_resource_with_its_namespace(namespace: str | None, ref: str) -> None:
    assert builders.resource_ref(namespace, "croissant") == ref
