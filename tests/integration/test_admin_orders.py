"""The order board over HTTP: filters and keyset pages, details, and status changes through
the state machine with optimistic concurrency and exactly-once stock settlement."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from pickup.adapters.orm import NotificationLog, Order, OrderItem, OrderStatusHistory
from pickup.core.orders import TRANSITIONS, Actor, OrderStatus, ReservationState, new_order_code
from pickup.runtime import Resources
from tests.integration.staff_helpers import Office, assert_problem, place_order, stock

LONDON = ZoneInfo("Europe/London")


async def put_status(
    client: httpx.AsyncClient, order_id: str, status: str, if_match: int | None, **extra: Any
) -> httpx.Response:
    headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
    return await client.put(
        f"/api/admin/orders/{order_id}/status", json={"status": status, **extra}, headers=headers
    )


async def insert_order(
    resources: Resources,
    *,
    name: str,
    email: str,
    pickup_at: datetime,
    created_at: datetime,
    status: OrderStatus = OrderStatus.CONFIRMED,
    code: str | None = None,
) -> Order:
    order = Order(
        code=code or new_order_code(),
        status=status,
        customer_name=name,
        customer_email=email,
        pickup_at=pickup_at,
        subtotal_cents=300,
        total_cents=300,
        currency="GBP",
        lookup_token_hash="0" * 64,
        reservation_state=ReservationState.HELD,
        created_at=created_at,
        updated_at=created_at,
        items=[
            OrderItem(
                product_id="bun",
                product_name="Bun",
                unit_price_cents=300,
                quantity=1,
                line_total_cents=300,
            )
        ],
        history=[
            OrderStatusHistory(
                from_status=None, to_status=status, actor_type=Actor.CUSTOMER, created_at=created_at
            )
        ],
    )
    async with resources.sessions.begin() as session:
        session.add(order)
    return order


@pytest.fixture
async def board(office_app: Office) -> list[Order]:
    """Twelve orders over three pickup days, each status and customer known."""
    base = datetime(2030, 3, 4, 9, 0, tzinfo=LONDON)
    people = [("Ada Lovelace", "ada@example.com"), ("Alan Turing", "alan@example.org")]
    statuses = [OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY]
    orders = []
    for index in range(12):
        name, email = people[index % 2]
        orders.append(
            await insert_order(
                office_app.resources,
                name=name,
                email=email,
                pickup_at=base + timedelta(days=index // 4, minutes=15 * (index % 4)),
                created_at=datetime(2030, 3, 1, tzinfo=UTC) + timedelta(minutes=7 * (11 - index)),
                status=statuses[index % 3],
                code=f"A{index:05d}"[:6] if index else "K7M2QX",
            )
        )
    return orders


async def codes(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/api/admin/orders", params=params)
    assert response.status_code == 200, response.text
    return [row["code"] for row in response.json()["items"]]


async def test_filters_select_the_right_orders(
    board: list[Order], staff: httpx.AsyncClient
) -> None:
    by_code = {order.code: order for order in board}
    everything = await codes(staff, limit=200)
    assert everything == [order.code for order in board]  # pickup time order by default

    ready_or_preparing = await codes(staff, status=["ready", "preparing"], limit=200)
    assert set(ready_or_preparing) == {
        o.code for o in board if o.status in (OrderStatus.READY, OrderStatus.PREPARING)
    }
    second_day = await codes(staff, pickup_from="2030-03-05", pickup_to="2030-03-05")
    assert second_day == [o.code for o in board[4:8]]
    assert await codes(staff, pickup_from="2030-03-05") == [o.code for o in board[4:]]

    assert await codes(staff, q="k7m-2qx") == ["K7M2QX"]  # a code as people type it
    assert set(await codes(staff, q="TURING", limit=200)) == {
        o.code for o in board if o.customer_name == "Alan Turing"
    }
    assert set(await codes(staff, q="example.org", limit=200)) == {
        o.code for o in board if o.customer_email.endswith(".org")
    }
    assert await codes(staff, q="100%_") == []  # LIKE wildcards are searched for literally
    newest_first = await codes(staff, sort="-created_at", limit=200)
    assert newest_first == [o.code for o in sorted(board, key=lambda o: o.created_at, reverse=True)]
    assert by_code["K7M2QX"].customer_name == "Ada Lovelace"


@pytest.mark.parametrize("sort", ["pickup_at", "-pickup_at", "created_at", "-created_at"])
async def test_keyset_pages_cover_every_order_once_in_order(
    board: list[Order], staff: httpx.AsyncClient, sort: str
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"sort": sort, "limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = (await staff.get("/api/admin/orders", params=params)).json()
        seen += [row["order_id"] for row in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    key = sort.lstrip("-")
    expected = sorted(board, key=lambda o: (getattr(o, key), str(o.id)), reverse=sort[0] == "-")
    assert seen == [str(o.id) for o in expected]
    assert pages == 3


MALFORMED_FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"status": "lost"}, "query.status.0"),
    ({"pickup_from": "2030-02-30"}, "query.pickup_from"),
    ({"pickup_from": "2030-03-06", "pickup_to": "2030-03-05"}, "query.pickup_from"),
    ({"sort": "customer_name"}, "query.sort"),
    ({"limit": 0}, "query.limit"),
    ({"cursor": "not-a-cursor"}, "query.cursor"),
    ({"q": "   "}, "query.q"),
]


async def test_malformed_filters_are_precise_problems(staff: httpx.AsyncClient) -> None:
    for params, field in MALFORMED_FILTERS:
        response = await staff.get("/api/admin/orders", params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], params


async def test_a_cursor_only_pages_the_sort_it_came_from(
    board: list[Order], staff: httpx.AsyncClient
) -> None:
    cursor = (await staff.get("/api/admin/orders", params={"limit": 2})).json()["next_cursor"]
    response = await staff.get("/api/admin/orders", params={"cursor": cursor, "sort": "created_at"})
    assert response.status_code == 422
    assert "sort=pickup_at" in response.json()["detail"]


async def test_details_show_history_with_who_stock_impact_and_notifications(
    office_app: Office, customer: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    placed = await place_order(customer, [("croissant", 2), ("bun", 1)])
    order_id = placed["order_id"]
    detail = await staff.get(f"/api/admin/orders/{order_id}")
    assert detail.status_code == 200
    assert detail.headers["etag"] == '"1"'
    for to in ("confirmed", "preparing"):
        version = detail.json()["version"]
        detail = await put_status(staff, order_id, to, version, note=f"to {to}")
        assert detail.status_code == 200, detail.text
    async with office_app.resources.sessions.begin() as session:
        session.add(
            NotificationLog(
                order_id=uuid.UUID(order_id),
                channel="email",
                template="order.confirmed",
                recipient="grace@example.com",
                status="sent",
            )
        )

    body = (await staff.get(f"/api/admin/orders/{order_id}")).json()
    assert body["status"] == "preparing"
    assert body["customer_email"] == "grace@example.com"
    assert body["allowed_transitions"] == ["ready", "cancelled"]
    history = [(h["from_status"], h["to_status"], h["actor"]) for h in body["history"]]
    assert history == [
        (None, "pending", "customer"),
        ("pending", "confirmed", "staff"),
        ("confirmed", "preparing", "staff"),
    ]
    assert body["history"][0]["staff"] is None
    assert body["history"][2]["staff"]["display_name"] == "Sam"
    assert body["history"][2]["note"] == "to preparing"
    lines = {line["product_id"]: line for line in body["lines"]}
    assert lines["croissant"]["effect"] == "held"
    assert (lines["croissant"]["reserved_delta"], lines["croissant"]["available_delta"]) == (2, -2)
    assert [n["template"] for n in body["notifications"]] == ["order.confirmed"]

    missing = await staff.get(f"/api/admin/orders/{uuid.uuid4()}")
    assert_problem(missing, 404, "order-not-found")


def _path_to(target: OrderStatus) -> list[OrderStatus]:
    happy = [OrderStatus.CONFIRMED, OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.PICKED_UP]
    if target in happy:
        return happy[: happy.index(target) + 1]
    return [OrderStatus.CANCELLED]


async def test_every_transition_is_allowed_or_refused_as_the_state_machine_says(
    office_app: Office, customer: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    staff_targets = [status for status in OrderStatus if status is not OrderStatus.EXPIRED]

    async def order_in(current: OrderStatus) -> tuple[str, int]:
        order_id = (await place_order(customer, [("croissant", 1)]))["order_id"]
        version = 1
        for step in _path_to(current) if current is not OrderStatus.PENDING else []:
            response = await put_status(staff, order_id, step, version)
            assert response.status_code == 200, (current, step, response.text)
            version = response.json()["version"]
        return order_id, version

    for current in staff_targets:
        allowed = [s for s in staff_targets if s in TRANSITIONS[current]]
        order_id, version = await order_in(current)
        for target in OrderStatus:
            if target in allowed:
                continue
            body = assert_problem(
                await put_status(staff, order_id, target, version), 409, "invalid-transition"
            )
            assert (body["current"], body["requested"]) == (current, target)
            assert body["allowed"] == allowed, (current, target)
        detail = (await staff.get(f"/api/admin/orders/{order_id}")).json()
        assert (detail["status"], detail["version"]) == (current, version)  # nothing changed

        for number, target in enumerate(allowed):
            if number:
                order_id, version = await order_in(current)
            response = await put_status(staff, order_id, target, version)
            assert response.status_code == 200, (current, target, response.text)
            assert response.json()["status"] == target
            assert response.headers["etag"] == f'"{version + 1}"'


async def test_a_status_change_needs_the_version_and_refuses_a_stale_one(
    customer: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    order_id = (await place_order(customer))["order_id"]
    assert_problem(
        await put_status(staff, order_id, "confirmed", None), 428, "precondition-required"
    )
    malformed = await staff.put(
        f"/api/admin/orders/{order_id}/status",
        json={"status": "confirmed"},
        headers={"If-Match": "yesterday"},
    )
    assert_problem(malformed, 422, "invalid-input")
    both = await put_status(staff, order_id, "confirmed", 1, version=2)
    assert_problem(both, 422, "invalid-input")
    unknown = await put_status(staff, order_id, "eaten", 1)
    assert unknown.status_code == 422

    assert (await put_status(staff, order_id, "confirmed", 1)).status_code == 200
    stale = await put_status(staff, order_id, "cancelled", 1)
    body = assert_problem(stale, 412, "stale-version")
    assert (body["current_status"], body["current_version"]) == ("confirmed", 2)
    by_body = await staff.put(
        f"/api/admin/orders/{order_id}/status", json={"status": "preparing", "version": 2}
    )
    assert by_body.status_code == 200, by_body.text


async def test_two_staff_changing_one_order_at_once_one_wins_the_other_is_told(
    office_app: Office,
    customer: httpx.AsyncClient,
    staff: httpx.AsyncClient,
    admin: httpx.AsyncClient,
) -> None:
    order_id = (await place_order(customer, [("bun", 3)]))["order_id"]
    first, second = await asyncio.gather(
        put_status(staff, order_id, "confirmed", 1),
        put_status(admin, order_id, "cancelled", 1),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses[0] == 200 and statuses[1] in (409, 412), (first.text, second.text)
    winner = first if first.status_code == 200 else second
    detail = (await staff.get(f"/api/admin/orders/{order_id}")).json()
    assert detail["status"] == winner.json()["status"]
    assert detail["version"] == 2
    assert len(detail["history"]) == 2
    expected = (10, 0, 10) if detail["status"] == "cancelled" else (10, 3, 7)
    assert await stock(office_app.resources, "bun") == expected


async def test_pickup_confirms_and_cancel_releases_stock_exactly_once(
    office_app: Office, customer: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    resources = office_app.resources
    picked = (await place_order(customer, [("croissant", 4)]))["order_id"]
    cancelled = (await place_order(customer, [("croissant", 3)]))["order_id"]
    assert await stock(resources, "croissant") == (30, 7, 23)

    version = 1
    for step in ("confirmed", "preparing", "ready", "picked_up"):
        version = (await put_status(staff, picked, step, version)).json()["version"]
    assert await stock(resources, "croissant") == (26, 3, 23)

    assert (await put_status(staff, cancelled, "cancelled", 1)).status_code == 200
    assert await stock(resources, "croissant") == (26, 0, 26)

    # Repeats (a double click, a retry with the old or the new version, several at once)
    # change nothing.
    repeats = await asyncio.gather(
        put_status(staff, picked, "picked_up", version),
        put_status(staff, picked, "picked_up", version - 1),
        put_status(staff, cancelled, "cancelled", 2),
        put_status(staff, cancelled, "cancelled", 1),
        put_status(staff, picked, "cancelled", version),
    )
    assert {response.status_code for response in repeats} <= {409, 412}
    assert await stock(resources, "croissant") == (26, 0, 26)
    detail = (await staff.get(f"/api/admin/orders/{picked}")).json()
    assert [line["effect"] for line in detail["lines"]] == ["deducted"]
    detail = (await staff.get(f"/api/admin/orders/{cancelled}")).json()
    assert [line["effect"] for line in detail["lines"]] == ["released"]
    assert len(detail["history"]) == 2


async def test_signed_in_staff_see_an_orders_details_without_its_lookup_token(
    staff: httpx.AsyncClient, customer: httpx.AsyncClient
) -> None:
    accepted = await place_order(customer)
    assert (await customer.get(accepted["details_url"])).status_code == 404
    response = await staff.get(accepted["details_url"])
    assert response.status_code == 200, response.text
    assert response.json()["customer"]["email"] == "grace@example.com"
