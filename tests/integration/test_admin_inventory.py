"""Inventory for admins over HTTP: levels, restock and adjust with a ledger, thresholds
(read-only where a resource manages them), availability, low stock, reorder suggestions,
and the live events and menu refresh each change causes."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import select

from pickup import live
from pickup.adapters.orm import InventoryLedgerEntry, StaffUser
from tests.integration.staff_helpers import ADMIN_EMAIL, Office, assert_problem, place_order, stock


async def ledger(office_app: Office) -> list[InventoryLedgerEntry]:
    async with office_app.resources.sessions() as session:
        return list(
            await session.scalars(select(InventoryLedgerEntry).order_by(InventoryLedgerEntry.id))
        )


async def staff_events(office_app: Office) -> list[tuple[str, dict[str, Any]]]:
    entries = await office_app.resources.redis.xrange(live.stream_key(live.STAFF))
    return [(fields["type"], json.loads(fields["data"])) for _, fields in entries]


async def test_the_list_shows_levels_thresholds_and_a_status(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/api/admin/inventory")
    assert response.status_code == 200
    items = {item["product_id"]: item for item in response.json()["items"]}
    assert set(items) == {"croissant", "bun", "loaf", "tart", "pie"}
    assert items["bun"] | {"updated_at": None} == {
        "product_id": "bun",
        "name": "Bun",
        "category": "Bakery",
        "is_available": True,
        "on_hand": 10,
        "reserved": 0,
        "available": 10,
        "low_stock_threshold": 5,
        "critical_threshold": 2,
        "reorder_quantity": None,
        "status": "ok",
        "stock_status": "in_stock",
        "managed_by": None,
        "thresholds_editable": True,
        "updated_at": None,
    }
    assert (items["loaf"]["status"], items["tart"]["status"]) == ("low", "out")
    assert items["pie"]["thresholds_editable"] is False
    assert items["pie"]["managed_by"] == "kitchen/pie-thresholds"


async def test_restock_and_adjust_move_stock_and_write_the_ledger_with_who_and_why(
    office_app: Office, admin: httpx.AsyncClient
) -> None:
    restocked = await admin.post(
        "/api/admin/inventory/bun/restock", json={"quantity": 12, "reason": "morning delivery"}
    )
    assert restocked.status_code == 200, restocked.text
    assert (restocked.json()["on_hand"], restocked.json()["available"]) == (22, 22)
    adjusted = await admin.post(
        "/api/admin/inventory/bun/adjust", json={"delta": -3, "reason": "dropped a tray"}
    )
    assert adjusted.status_code == 200, adjusted.text
    assert await stock(office_app.resources, "bun") == (19, 0, 19)

    async with office_app.resources.sessions() as session:
        ada = await session.scalar(select(StaffUser).where(StaffUser.email == ADMIN_EMAIL))
    rows = [
        (e.product_id, e.kind, e.delta_on_hand, e.on_hand_after, e.reason, e.staff_user_id)
        for e in await ledger(office_app)
    ]
    assert rows == [
        ("bun", "restock", 12, 22, "morning delivery", ada.id),
        ("bun", "adjust", -3, 19, "dropped a tray", ada.id),
    ]
    changes = [
        (kind, data["product_id"], data["change"]) for kind, data in await staff_events(office_app)
    ]
    assert changes == [("stock.changed", "bun", "restock"), ("stock.changed", "bun", "adjust")]


async def test_bad_stock_changes_are_precise_problems_and_change_nothing(
    office_app: Office, admin: httpx.AsyncClient, customer: httpx.AsyncClient
) -> None:
    await place_order(customer, [("bun", 4)])
    assert await stock(office_app.resources, "bun") == (10, 4, 6)
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("bun/restock", {"quantity": -5, "reason": "x"}, 422, "validation-error"),
        ("bun/restock", {"quantity": 0, "reason": "x"}, 422, "validation-error"),
        ("bun/restock", {"quantity": "5", "reason": "x"}, 422, "validation-error"),
        ("bun/restock", {"quantity": 5}, 422, "validation-error"),
        ("bun/restock", {"quantity": 5, "reason": "   "}, 422, "validation-error"),
        ("bun/adjust", {"delta": 0, "reason": "nothing"}, 422, "invalid-input"),
        # Reserved units cannot be written off: 6 are available, not 7.
        ("bun/adjust", {"delta": -7, "reason": "count"}, 409, "insufficient-stock"),
        ("nope/restock", {"quantity": 1, "reason": "x"}, 404, "unknown-product"),
        ("Bad_Id/restock", {"quantity": 1, "reason": "x"}, 422, "validation-error"),
    ]
    for path, body, status, slug in cases:
        response = await admin.post(f"/api/admin/inventory/{path}", json=body)
        assert_problem(response, status, slug)
    assert await stock(office_app.resources, "bun") == (10, 4, 6)
    assert await ledger(office_app) == []


async def test_thresholds_are_editable_unless_a_resource_manages_them(
    office_app: Office, admin: httpx.AsyncClient
) -> None:
    response = await admin.put(
        "/api/admin/inventory/bun/thresholds",
        json={"low_stock_threshold": 12, "critical_threshold": 4, "reorder_quantity": 24},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["low_stock_threshold"], body["critical_threshold"]) == (12, 4)
    assert (body["reorder_quantity"], body["status"]) == (24, "low")

    inverted = await admin.put(
        "/api/admin/inventory/bun/thresholds",
        json={"low_stock_threshold": 1, "critical_threshold": 4},
    )
    assert_problem(inverted, 422, "invalid-input")
    managed = await admin.put(
        "/api/admin/inventory/pie/thresholds",
        json={"low_stock_threshold": 1, "critical_threshold": 0},
    )
    problem = assert_problem(managed, 409, "thresholds-managed")
    assert problem["managed_by"] == "kitchen/pie-thresholds"
    pie = await office_app.resources.inventory.get_product("pie", consistent_read=True)
    assert pie is not None and (pie.low_stock_threshold, pie.critical_threshold) == (5, 2)
    bun = await office_app.resources.inventory.get_product("bun", consistent_read=True)
    assert bun is not None and bun.reorder_quantity == 24  # kept when not sent below
    await admin.put(
        "/api/admin/inventory/bun/thresholds",
        json={"low_stock_threshold": 3, "critical_threshold": 1},
    )
    bun = await office_app.resources.inventory.get_product("bun", consistent_read=True)
    assert bun is not None and bun.reorder_quantity == 24


async def test_switching_a_product_off_takes_it_off_the_menu_at_once(
    admin: httpx.AsyncClient, customer: httpx.AsyncClient
) -> None:
    assert (await customer.get("/api/menu/croissant")).json()["stock"]["status"] == "in_stock"
    response = await admin.put(
        "/api/admin/inventory/croissant/availability", json={"is_available": False}
    )
    assert response.status_code == 200
    assert response.json()["stock_status"] == "out_of_stock"
    assert (await customer.get("/api/menu/croissant")).json()["stock"]["status"] == "out_of_stock"
    refused = await customer.post(
        "/api/orders",
        json={
            "customer": {"name": "A", "email": "a@example.com"},
            "items": [{"product_id": "croissant", "quantity": 1}],
        },
        headers={"Idempotency-Key": "switched-off-1"},
    )
    assert refused.status_code == 409
    bad = await admin.put(
        "/api/admin/inventory/croissant/availability", json={"is_available": "no"}
    )
    assert_problem(bad, 422, "validation-error")


async def test_low_stock_lists_what_needs_attention_emptiest_first(
    admin: httpx.AsyncClient,
) -> None:
    items = (await admin.get("/api/admin/inventory/low-stock")).json()["items"]
    assert [(item["product_id"], item["status"]) for item in items] == [
        ("tart", "out"),
        ("loaf", "low"),
    ]


async def test_reorder_suggestions_follow_sales_velocity_cover_and_stock(
    office_app: Office, admin: httpx.AsyncClient, customer: httpx.AsyncClient
) -> None:
    # 14 croissants and 3 loaves sold in the window (7 days, 3 days of cover by default).
    for _ in range(7):
        await place_order(customer, [("croissant", 2)])
    await place_order(customer, [("loaf", 3)])
    body = (await admin.get("/api/admin/inventory/reorder-suggestions")).json()
    assert (body["velocity_days"], body["cover_days"]) == (7, 3.0)
    items = {item["product_id"]: item for item in body["items"]}
    # croissant: 2/day * 3 days + 5 safety = 11 <= 16 available: nothing to order.
    assert "croissant" not in items
    # loaf: ceil(3/7 * 3) + 5 = 7 target, 1 available -> 6 (a multiple of its reorder of 6).
    assert (items["loaf"]["target_stock"], items["loaf"]["suggested_quantity"]) == (7, 6)
    # tart: nothing sold, nothing left: the safety stock.
    assert items["tart"]["suggested_quantity"] == 5
    assert items["tart"]["days_of_cover"] is None
    assert body["items"][0]["product_id"] == "loaf"
