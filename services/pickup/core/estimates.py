"""When an order will be ready, from the kitchen's queue ahead of it. Pure: no I/O.

The kitchen is modelled as ``staff_capacity`` lanes, each preparing one order at a time; an
order takes ``items x prep_minutes_per_item``. The orders ahead (already confirmed or being
prepared, due no later than this one) are handed to the first free lane in their given
order, and so is this order after them. It is ready when its lane finishes it, but never
before the pickup time the customer chose: the kitchen prepares it for then, not earlier.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime, timedelta


def kitchen_minutes(
    items: int, queue_ahead: Sequence[int], prep_minutes_per_item: float, staff_capacity: int
) -> float:
    """Minutes from now until an order of ``items`` items is prepared.

    ``queue_ahead`` is the item count of each order ahead, in the order they are worked on.
    """
    if staff_capacity < 1:
        raise ValueError("staff_capacity must be at least 1")
    if prep_minutes_per_item <= 0:
        raise ValueError("prep_minutes_per_item must be positive")
    if items < 1 or any(count < 0 for count in queue_ahead):
        raise ValueError("an order has at least one item and a queue no negative counts")
    lanes = [0.0] * staff_capacity
    for count in queue_ahead:
        free_at = heapq.heappop(lanes)
        heapq.heappush(lanes, free_at + count * prep_minutes_per_item)
    return lanes[0] + items * prep_minutes_per_item


def estimate_ready_at(
    *,
    now: datetime,
    pickup_at: datetime,
    items: int,
    queue_ahead: Sequence[int],
    prep_minutes_per_item: float,
    staff_capacity: int,
) -> datetime:
    """The estimated ready time: the later of the pickup time and the kitchen's finish.

    The kitchen's finish is rounded up to the whole minute (a customer reads minutes).
    """
    minutes = kitchen_minutes(items, queue_ahead, prep_minutes_per_item, staff_capacity)
    finish = now + timedelta(minutes=minutes)
    if finish.second or finish.microsecond:
        finish = finish.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return max(pickup_at, finish)
