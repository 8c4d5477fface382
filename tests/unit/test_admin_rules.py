"""The pure parts of the back office: cursors, preconditions, the reorder formula, percentiles
and what a customer's live stream may carry."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from pickup.admin.events import customer_view, format_event
from pickup.admin.inventory import suggest
from pickup.admin.live_hub import LiveEvent, event_key
from pickup.admin.metrics import per_hour, percentile, prep_time
from pickup.admin.orders import (
    PreconditionRequired,
    build_filter,
    decode_cursor,
    encode_cursor,
    expected_version,
)
from pickup.core.errors import InvalidInput
from pickup.core.inventory import ProductWithInventory
from pickup.core.orders import OrderStatus

LONDON = ZoneInfo("Europe/London")


def test_a_cursor_round_trips_and_is_bound_to_its_sort() -> None:
    order = SimpleNamespace(
        id=uuid.uuid4(), pickup_at=datetime(2030, 1, 2, 9, 15, tzinfo=UTC), created_at=None
    )
    cursor = encode_cursor("-pickup_at", order)  # type: ignore[arg-type]
    assert decode_cursor(cursor, "-pickup_at") == (order.pickup_at, order.id)
    with pytest.raises(InvalidInput, match="sort=-pickup_at"):
        decode_cursor(cursor, "pickup_at")
    for bad in ("", "%%%", "bm90IGpzb24", "WzEsMiwzXQ"):
        with pytest.raises(InvalidInput):
            decode_cursor(bad, "pickup_at")


@pytest.mark.parametrize(
    ("if_match", "body", "expected"),
    [('"3"', None, 3), ('W/"3"', None, 3), (None, 4, 4), ('"5"', 5, 5), ("*", None, None)],
)
def test_the_expected_version_comes_from_if_match_or_the_body(
    if_match: str | None, body: int | None, expected: int | None
) -> None:
    assert expected_version(if_match, body) == expected


def test_a_missing_or_contradictory_version_is_refused() -> None:
    with pytest.raises(PreconditionRequired) as missing:
        expected_version(None, None)
    assert missing.value.status == 428
    for if_match, body in (("3", None), ('"x"', None), ('"3"', 4)):
        with pytest.raises(InvalidInput):
            expected_version(if_match, body)


def test_dates_filter_whole_days_in_the_shop_time_zone() -> None:
    where = build_filter(
        statuses=[OrderStatus.READY, OrderStatus.READY],
        pickup_from=date(2030, 7, 1),
        pickup_to=date(2030, 7, 1),
        q=" k7m-2qx ",
        zone=LONDON,
    )
    assert where.statuses == (OrderStatus.READY,)
    assert where.pickup_from == datetime(2030, 6, 30, 23, 0, tzinfo=UTC)
    assert where.pickup_before == datetime(2030, 7, 1, 23, 0, tzinfo=UTC)
    assert (where.code, where.text) == ("K7M2QX", "k7m-2qx")
    assert (
        build_filter(statuses=None, pickup_from=None, pickup_to=None, q="smith", zone=LONDON).code
        is None
    )


def product(available: int, reserved: int = 0, **extra: object) -> ProductWithInventory:
    return ProductWithInventory(
        id="bun",
        name="Bun",
        price_cents=100,
        on_hand=available + reserved,
        reserved=reserved,
        available=available,
        low_stock_threshold=5,
        critical_threshold=2,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("available", "sold", "reorder", "target", "suggested"),
    [
        (0, 0, None, 5, 5),  # no sales: just the safety stock
        (20, 14, None, 11, 0),  # 2/day for 3 days + 5 = 11, 20 available
        (3, 14, None, 11, 8),
        (3, 14, 6, 11, 12),  # rounded up to whole cases of 6
        (1, 1, None, 6, 5),  # ceil(1/7 * 3) = 1
    ],
)
def test_the_reorder_formula(
    available: int, sold: int, reorder: int | None, target: int, suggested: int
) -> None:
    result = suggest(
        product(available, reserved=2, reorder_quantity=reorder),
        sold,
        velocity_days=7,
        cover_days=3,
    )
    assert (result.target_stock, result.suggested_quantity) == (target, suggested)


def test_percentiles_use_the_nearest_rank() -> None:
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([float(n) for n in range(1, 11)], 0.9) == 9.0
    assert percentile([float(n) for n in range(1, 12)], 0.9) == 10.0
    start = datetime(2030, 1, 1, 9, tzinfo=UTC)
    times = prep_time([(start, start.replace(minute=4)), (start, start.replace(minute=10))])
    assert (times.orders, times.average_minutes, times.p90_minutes) == (2, 7.0, 10.0)


def test_orders_per_hour_run_from_midnight_to_now_in_local_time() -> None:
    day_start = datetime(2030, 7, 1, tzinfo=LONDON)
    created = [datetime(2030, 7, 1, 6, 30, tzinfo=UTC), datetime(2030, 7, 1, 6, 45, tzinfo=UTC)]
    hours = per_hour(created, day_start, datetime(2030, 7, 1, 8, 5, tzinfo=UTC))
    assert [(h.hour, h.orders) for h in hours][-3:] == [("07:00", 2), ("08:00", 0), ("09:00", 0)]
    assert len(hours) == 10


def test_a_customer_event_carries_no_personal_data() -> None:
    published = {
        "order_id": "o-1",
        "status": "ready",
        "pickup_at": "2030-01-01T09:00:00+00:00",
        "estimated_ready_at": None,
        "customer_name": "Grace",
        "customer_email": "grace@example.com",
        "code": "K7M2QX",
    }
    view = json.loads(customer_view(LiveEvent("1-0", "order.status", json.dumps(published))) or "")
    assert set(view) == {
        "order_id",
        "status",
        "pickup_at",
        "estimated_ready_at",
        "label",
        "message",
        "final",
    }
    assert view["label"] == "Ready for pickup" and view["final"] is False
    assert customer_view(LiveEvent("1-1", "x", "not json")) is None
    assert customer_view(LiveEvent("1-2", "x", '{"status": "eaten"}')) is None


def test_events_are_framed_for_event_source() -> None:
    assert format_event("order.status", '{"a":1}', "5-0") == (
        'id: 5-0\nevent: order.status\ndata: {"a":1}\n\n'
    )
    assert event_key("1700000000000-12") > event_key("1700000000000-9")
