"""The estimated ready time from the kitchen queue ahead (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pickup.core.estimates import estimate_ready_at, kitchen_minutes

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def estimate(pickup_in: float, items: int, ahead: list[int], capacity: int = 1) -> datetime:
    return estimate_ready_at(
        now=NOW,
        pickup_at=NOW + timedelta(minutes=pickup_in),
        items=items,
        queue_ahead=ahead,
        prep_minutes_per_item=2,
        staff_capacity=capacity,
    )


def test_with_nothing_ahead_an_order_is_ready_at_its_pickup_time() -> None:
    assert estimate(30, items=3, ahead=[]) == NOW + timedelta(minutes=30)


def test_an_order_for_as_soon_as_possible_is_ready_when_the_kitchen_finishes_it() -> None:
    assert estimate(0, items=3, ahead=[]) == NOW + timedelta(minutes=6)


def test_the_queue_ahead_delays_the_order_past_its_pickup_time() -> None:
    # 2 + 4 + 1 items ahead, one cook: 14 minutes, then 6 of its own.
    assert estimate(15, items=3, ahead=[2, 4, 1]) == NOW + timedelta(minutes=20)


def test_more_staff_work_through_the_queue_in_parallel() -> None:
    # Two cooks: lanes finish at 4 and 8 (+2): the order starts at 6 on the first free lane.
    assert kitchen_minutes(3, [2, 4, 1], prep_minutes_per_item=2, staff_capacity=2) == 12
    assert kitchen_minutes(3, [2, 4, 1], prep_minutes_per_item=2, staff_capacity=3) == 8
    assert estimate(0, items=3, ahead=[2, 4, 1], capacity=10) == NOW + timedelta(minutes=6)


def test_the_estimate_is_rounded_up_to_the_whole_minute() -> None:
    ready = estimate_ready_at(
        now=NOW + timedelta(seconds=10),
        pickup_at=NOW,
        items=1,
        queue_ahead=[],
        prep_minutes_per_item=1.5,
        staff_capacity=1,
    )
    assert ready == NOW + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("items", "ahead", "prep", "capacity"),
    [(0, [], 2, 1), (1, [-1], 2, 1), (1, [], 0, 1), (1, [], 2, 0)],
)
def test_impossible_inputs_are_refused(
    items: int, ahead: list[int], prep: float, capacity: int
) -> None:
    with pytest.raises(ValueError):
        kitchen_minutes(items, ahead, prep, capacity)
