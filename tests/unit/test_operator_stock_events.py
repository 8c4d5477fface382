"""Which live events name a product, and when a resource's tick reads its product."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pickup.settings import load_settings
from pickup_operator.handlers import OperatorContext
from pickup_operator.stock_events import changed_product


def _fields(event_type: str, data: object) -> dict[str, str]:
    return {"type": event_type, "data": json.dumps(data)}


def test_only_stock_changed_events_with_a_valid_product_id_count() -> None:
    assert changed_product(_fields("stock.changed", {"product_id": "croissant"})) == "croissant"
    assert changed_product(_fields("stock.alert", {"product_id": "croissant"})) is None
    assert changed_product(_fields("order.placed", {"product_id": "croissant"})) is None
    assert changed_product(_fields("stock.changed", {"product_id": "Not An Id!"})) is None
    assert changed_product(_fields("stock.changed", ["croissant"])) is None
    assert changed_product({"type": "stock.changed", "data": "{not json"}) is None
    assert changed_product({"type": "stock.changed"}) is None


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _context(interval: float) -> tuple[OperatorContext, _Clock]:
    clock = _Clock()
    settings = load_settings(
        env="development",
        database_url="sqlite:///var/p.db",
        redis_url="memory://dev",
        operator_reconcile_interval_seconds=interval,
    )
    context = OperatorContext(
        settings=settings,
        inventory=None,  # type: ignore[arg-type]
        alerts=None,  # type: ignore[arg-type]
        clock=lambda: datetime.now(UTC),
        monotonic=clock,
    )
    return context, clock


def test_a_tick_reads_on_first_run_after_the_interval_and_after_an_event() -> None:
    context, clock = _context(interval=60)
    assert context.check_due("uid-1", "croissant")  # first tick
    clock.now += 2
    assert not context.check_due("uid-1", "croissant")
    context.stock_changed("baguette")
    assert not context.check_due("uid-1", "croissant")
    context.stock_changed("croissant")
    assert context.check_due("uid-1", "croissant")
    clock.now += 2
    assert not context.check_due("uid-1", "croissant")  # the event was consumed
    clock.now += 60
    assert context.check_due("uid-1", "croissant")  # the full interval passed


def test_a_forgotten_resource_starts_over() -> None:
    context, clock = _context(interval=60)
    assert context.check_due("uid-1", "croissant")
    clock.now += 1
    context.forget("uid-1")
    assert context.check_due("uid-1", "croissant")


def test_a_handler_read_postpones_the_next_full_check() -> None:
    context, clock = _context(interval=60)
    assert context.check_due("uid-1", "croissant")
    clock.now += 50
    context.checked("uid-1")  # the create/update handler read the product
    clock.now += 20
    assert not context.check_due("uid-1", "croissant")
    clock.now += 40
    assert context.check_due("uid-1", "croissant")
