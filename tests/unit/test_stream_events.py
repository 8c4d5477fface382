"""What a products-table stream record means: ledger kinds and threshold crossings (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from pickup.worker.stock_events import ledger_kind, stock_change


def image(available: int, reserved: int = 0, low: int = 5, critical: int = 2) -> dict[str, Any]:
    return {
        "id": {"S": "tart"},
        "name": {"S": "Tart"},
        "on_hand": {"N": str(available + reserved)},
        "reserved": {"N": str(reserved)},
        "available": {"N": str(available)},
        "low_stock_threshold": {"N": str(low)},
        "critical_threshold": {"N": str(critical)},
    }


def record(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"Keys": {"id": {"S": "tart"}}, "SequenceNumber": "100"}
    if old:
        data["OldImage"] = old
    if new:
        data["NewImage"] = new
    name = "MODIFY" if old and new else "INSERT" if new else "REMOVE"
    return {"eventID": "e1", "eventName": name, "dynamodb": data}


@pytest.mark.parametrize(
    ("deltas", "kind"),
    [
        ((0, 2, -2), "reserve"),
        ((-2, -2, 0), "confirm"),
        ((0, -2, 2), "release"),
        ((5, 0, 5), "restock"),
        ((-1, 0, -1), "adjust"),
        ((3, 1, 2), "set"),
    ],
)
def test_the_ledger_kind_follows_from_what_moved(deltas: tuple[int, int, int], kind: str) -> None:
    assert ledger_kind(*deltas) == kind


@pytest.mark.parametrize(
    ("before", "after", "crossing"),
    [
        (10, 6, None),  # still ok
        (6, 5, "low"),  # onto the low threshold
        (5, 3, None),  # within low
        (3, 2, "critical"),
        (10, 0, "out"),  # one step across three levels: one alert
        (1, 0, "out"),
        (0, 10, None),  # restocked: up, never an alert
        (4, 4, None),
    ],
)
def test_only_a_downward_move_into_a_worse_level_is_a_crossing(
    before: int, after: int, crossing: str | None
) -> None:
    change = stock_change(record(image(before), image(after, reserved=before - after)))
    if before == after:
        assert change is None  # no stock moved: no ledger row, no alert
        return
    assert change is not None
    assert change.crossing == crossing


def test_a_catalogue_edit_is_not_a_stock_change() -> None:
    renamed = image(4) | {"name": {"S": "Plum tart"}}
    assert stock_change(record(image(4), renamed)) is None


def test_a_new_product_is_a_set_without_an_alert_and_a_removed_one_a_set_to_zero() -> None:
    created = stock_change(record(None, image(1)))
    assert created is not None and (created.kind, created.crossing) == ("set", None)
    assert created.ledger_values()["available_after"] == 1
    removed = stock_change(record(image(7), None))
    assert removed is not None and (removed.kind, removed.crossing) == ("set", None)
    assert removed.ledger_values()["delta_on_hand"] == -7


def test_a_change_carries_what_the_ledger_and_the_alert_need() -> None:
    change = stock_change(record(image(6), image(5, reserved=1)))
    assert change is not None
    assert change.ledger_values() | {"created_at": None} == {
        "product_id": "tart",
        "kind": "reserve",
        "delta_on_hand": 0,
        "delta_reserved": 1,
        "delta_available": -1,
        "on_hand_after": 6,
        "reserved_after": 1,
        "available_after": 5,
        "source_event_id": "e1",
        "reason": None,  # a reservation is no change made by hand
        "staff_user_id": None,
        "created_at": None,
    }
    alert = change.alert_payload("low")
    assert (alert["alert_id"], alert["level"], alert["previous_level"]) == ("e1", "low", "ok")
