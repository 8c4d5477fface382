"""The stock arithmetic, line validation and product rules, without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pickup.core.errors import Conflict, InvalidInput, NotFound, PickupError
from pickup.core.inventory import (
    KEEP,
    MAX_LINE_QUANTITY,
    MAX_LINES_PER_TRANSACTION,
    InsufficientStock,
    InventoryUpdate,
    Mismatch,
    ProductWithInventory,
    ReservationMismatch,
    Shortfall,
    StockLevels,
    StockLine,
    UnknownProduct,
    merge_lines,
    require_product_id,
)


def product(**overrides: object) -> ProductWithInventory:
    values: dict[str, object] = {
        "id": "croissant",
        "name": "Croissant",
        "price_cents": 250,
        "on_hand": 10,
        "reserved": 0,
        "available": 10,
        "low_stock_threshold": 5,
        "critical_threshold": 2,
    }
    values.update(overrides)
    return ProductWithInventory(**values)


# --- StockLevels ------------------------------------------------------------------------------


def test_reserving_moves_units_from_available_to_reserved() -> None:
    levels = StockLevels.initial(10).reserve(3)
    assert levels == StockLevels(on_hand=10, reserved=3, available=7)


def test_confirming_takes_reserved_units_out_of_the_shop() -> None:
    levels = StockLevels.initial(10).reserve(3).confirm(2)
    assert levels == StockLevels(on_hand=8, reserved=1, available=7)


def test_releasing_puts_reserved_units_back_on_sale() -> None:
    levels = StockLevels.initial(10).reserve(3).release(3)
    assert levels == StockLevels.initial(10)


def test_restocking_adds_to_on_hand_and_available() -> None:
    levels = StockLevels.initial(1).reserve(1).restock(5)
    assert levels == StockLevels(on_hand=6, reserved=1, available=5)


def test_adjusting_moves_on_hand_and_available_together() -> None:
    levels = StockLevels.initial(10).reserve(4)
    assert levels.adjust(-6) == StockLevels(on_hand=4, reserved=4, available=0)
    assert levels.adjust(2) == StockLevels(on_hand=12, reserved=4, available=8)


def test_reserving_more_than_is_available_names_the_shortfall() -> None:
    levels = StockLevels.initial(2)
    with pytest.raises(InsufficientStock) as raised:
        levels.reserve(3, product_id="croissant")
    assert raised.value.shortfalls == [Shortfall("croissant", 3, 2)]


def test_an_adjustment_cannot_write_off_reserved_units() -> None:
    levels = StockLevels.initial(5).reserve(4)
    with pytest.raises(InsufficientStock) as raised:
        levels.adjust(-2, product_id="bagel")
    assert raised.value.shortfalls == [Shortfall("bagel", 2, 1)]


@pytest.mark.parametrize("operation", ["confirm", "release"])
def test_confirm_or_release_beyond_the_reservation_is_a_mismatch(operation: str) -> None:
    levels = StockLevels.initial(5).reserve(1)
    with pytest.raises(ReservationMismatch) as raised:
        getattr(levels, operation)(2, product_id="bagel")
    assert raised.value.mismatches == [Mismatch("bagel", 2, 1)]


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5, "2"])
@pytest.mark.parametrize("operation", ["reserve", "confirm", "release", "restock"])
def test_stock_operations_refuse_non_positive_or_non_integer_quantities(
    operation: str, quantity: object
) -> None:
    with pytest.raises(InvalidInput):
        getattr(StockLevels.initial(5).reserve(2), operation)(quantity)


def test_a_zero_adjustment_is_refused() -> None:
    with pytest.raises(InvalidInput):
        StockLevels.initial(5).adjust(0)


@pytest.mark.parametrize(("on_hand", "reserved", "available"), [(5, 1, 3), (-1, 0, -1), (1, -1, 2)])
def test_levels_that_break_the_invariant_cannot_exist(
    on_hand: int, reserved: int, available: int
) -> None:
    with pytest.raises(ValueError):
        StockLevels(on_hand=on_hand, reserved=reserved, available=available)


operations = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "confirm", "release", "restock", "adjust"]),
        st.integers(min_value=-20, max_value=20),
    ),
    max_size=40,
)


@given(initial=st.integers(min_value=0, max_value=50), steps=operations)
def test_no_sequence_of_operations_breaks_the_invariant(
    initial: int, steps: list[tuple[str, int]]
) -> None:
    levels = StockLevels.initial(initial)
    for name, amount in steps:
        before = levels
        try:
            levels = getattr(levels, name)(amount)
        except PickupError:
            assert levels == before
        assert levels.on_hand == levels.available + levels.reserved
        assert min(levels.on_hand, levels.available, levels.reserved) >= 0


# --- StockLine and merging ----------------------------------------------------------------------


@pytest.mark.parametrize("product_id", ["a", "croissant", "pain-au-chocolat", "9-grain", "a" * 64])
def test_well_formed_product_ids_are_accepted(product_id: str) -> None:
    assert StockLine(product_id=product_id, quantity=1).product_id == product_id


@pytest.mark.parametrize(
    "product_id", ["", "-leading", "Upper", "has space", "under_score", "a" * 65, "émoji"]
)
def test_malformed_product_ids_are_rejected(product_id: str) -> None:
    with pytest.raises(ValidationError):
        StockLine(product_id=product_id, quantity=1)
    with pytest.raises(InvalidInput) as raised:
        StockLine.of(product_id, 1)
    assert raised.value.field == "product_id"
    with pytest.raises(InvalidInput):
        require_product_id(product_id)


@pytest.mark.parametrize("quantity", [0, -3, MAX_LINE_QUANTITY + 1, 1.0, "2", True])
def test_line_quantities_must_be_whole_numbers_from_one_to_the_limit(quantity: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        StockLine.of("croissant", quantity)  # type: ignore[arg-type]
    assert raised.value.field == "quantity"


def test_merging_sums_duplicate_products_in_product_order() -> None:
    lines = [
        StockLine.of("scone", 1),
        StockLine.of("bagel", 2),
        StockLine.of("scone", 4),
    ]
    assert merge_lines(lines) == [StockLine.of("bagel", 2), StockLine.of("scone", 5)]


def test_merging_refuses_a_merged_line_above_the_limit() -> None:
    lines = [StockLine.of("scone", MAX_LINE_QUANTITY), StockLine.of("scone", 1)]
    with pytest.raises(InvalidInput, match="at most"):
        merge_lines(lines)


def test_merging_refuses_no_lines_and_too_many_products() -> None:
    with pytest.raises(InvalidInput):
        merge_lines([])
    many = [StockLine.of(f"p{i}", 1) for i in range(MAX_LINES_PER_TRANSACTION + 1)]
    with pytest.raises(InvalidInput):
        merge_lines(many)


def test_merging_refuses_things_that_are_not_lines() -> None:
    with pytest.raises(InvalidInput):
        merge_lines([("croissant", 1)])  # type: ignore[list-item]


# --- Products ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("available", "is_available", "status"),
    [
        (10, True, "in_stock"),
        (6, True, "in_stock"),
        (5, True, "low_stock"),
        (1, True, "low_stock"),
        (0, True, "out_of_stock"),
        (10, False, "out_of_stock"),
    ],
)
def test_stock_status_follows_available_units_and_the_low_threshold(
    available: int, is_available: bool, status: str
) -> None:
    item = product(
        on_hand=available + 3, reserved=3, available=available, is_available=is_available
    )
    assert item.stock_status == status


def test_stock_status_is_part_of_the_serialised_product() -> None:
    assert product(available=3, on_hand=3).model_dump()["stock_status"] == "low_stock"


@pytest.mark.parametrize(
    ("available", "level"), [(0, "out"), (1, "critical"), (2, "critical"), (5, "low"), (6, "ok")]
)
def test_alert_level_uses_the_critical_and_low_thresholds(available: int, level: str) -> None:
    assert product(on_hand=available, available=available).alert_level == level


def test_a_product_with_inconsistent_stock_is_rejected() -> None:
    with pytest.raises(ValidationError, match="on_hand"):
        product(on_hand=10, reserved=1, available=10)


def test_a_product_with_critical_above_low_is_rejected() -> None:
    with pytest.raises(ValidationError, match="critical_threshold"):
        product(low_stock_threshold=1, critical_threshold=3)


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": ""},
        {"name": "x" * 121},
        {"price_cents": -1},
        {"currency": "gbp"},
        {"image": "javascript:alert(1)"},
        {"allergens": [""]},
        {"managed_by": "Not A Name"},
        {"max_per_order": 0},
    ],
)
def test_invalid_product_fields_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        product(**overrides)


def test_product_cleans_allergens_images_and_times() -> None:
    item = product(
        allergens=[" gluten", "milk", "gluten"],
        image="",
        updated_at=datetime(2026, 1, 1, 12, 0),
        managed_by="bakery/croissant-thresholds",
    )
    assert item.allergens == ["gluten", "milk"]
    assert item.image is None
    assert item.updated_at.tzinfo is UTC
    assert item.levels == StockLevels(on_hand=10, reserved=0, available=10)


# --- InventoryUpdate --------------------------------------------------------------------------


def test_a_restock_update_applies_to_levels() -> None:
    update = InventoryUpdate.restock(4, reason="delivery")
    assert update.apply(StockLevels.initial(1)) == StockLevels.initial(5)


def test_an_adjust_update_applies_to_levels() -> None:
    assert InventoryUpdate.adjust(-1).apply(StockLevels.initial(1)) == StockLevels.initial(0)


@pytest.mark.parametrize(
    "values",
    [
        {"kind": "restock"},
        {"kind": "restock", "quantity": 0},
        {"kind": "restock", "quantity": 1, "delta": 1},
        {"kind": "adjust", "delta": 0},
        {"kind": "adjust"},
        {"kind": "set_thresholds", "low_stock_threshold": 1},
        {"kind": "set_thresholds", "low_stock_threshold": 1, "critical_threshold": 2},
        {"kind": "set_thresholds", "low_stock_threshold": -1, "critical_threshold": 0},
        {"kind": "restock", "quantity": 1, "reason": "x" * 201},
        {"kind": "steal", "quantity": 1},
        {"kind": "restock", "quantity": 1, "surprise": True},
    ],
)
def test_invalid_inventory_updates_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        InventoryUpdate.parse(**values)


def test_threshold_updates_only_set_the_optional_fields_they_are_given() -> None:
    keep = InventoryUpdate.thresholds(5, 2)
    assert not keep.sets("reorder_quantity") and not keep.sets("managed_by")
    clear = InventoryUpdate.thresholds(5, 2, reorder_quantity=None, managed_by=None)
    assert clear.sets("reorder_quantity") and clear.sets("managed_by")
    given_values = InventoryUpdate.thresholds(5, 2, 24, "croissant")
    assert (given_values.reorder_quantity, given_values.managed_by) == (24, "croissant")
    assert InventoryUpdate.thresholds(5, 2, KEEP, KEEP) == keep


# --- Errors -----------------------------------------------------------------------------------


def test_insufficient_stock_is_a_conflict_listing_each_shortfall() -> None:
    error = InsufficientStock(
        [Shortfall("scone", 3, 1), Shortfall("bagel", 2, 0, reason="unavailable")]
    )
    assert isinstance(error, Conflict) and error.status == 409
    assert error.type == "insufficient-stock"
    assert error.extensions() == {
        "shortfalls": [
            {"product_id": "bagel", "requested": 2, "available": 0, "reason": "unavailable"},
            {"product_id": "scone", "requested": 3, "available": 1, "reason": "insufficient"},
        ]
    }
    assert "scone (asked for 3, 1 available)" in error.detail


def test_unknown_product_is_not_found_and_names_the_ids() -> None:
    error = UnknownProduct(["zz", "aa", "zz"])
    assert isinstance(error, NotFound) and error.status == 404
    assert error.type == "unknown-product"
    assert error.extensions() == {"product_ids": ["aa", "zz"]}
    assert "aa, zz" in error.detail


def test_reservation_mismatch_is_a_conflict_with_the_reserved_counts() -> None:
    error = ReservationMismatch([Mismatch("scone", 3, 1)])
    assert isinstance(error, Conflict)
    assert error.type == "reservation-mismatch"
    assert error.extensions() == {
        "mismatches": [{"product_id": "scone", "requested": 3, "reserved": 1}]
    }
