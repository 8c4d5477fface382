"""The staff back office under ``/api/admin``.

Every router here carries its role as a router-level dependency, so no route can be added
without one: orders, metrics and live events need a staff session, inventory and staff
accounts an admin's (tests/integration/test_auth_routes.py enumerates the app's routes and
proves it).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from pickup.admin import inventory, metrics, orders
from pickup.admin.schemas import (
    Adjustment,
    AdminOrderDetail,
    Availability,
    InventoryItem,
    InventoryList,
    Metrics,
    OrderPage,
    ReorderSuggestions,
    Restock,
    StatusChange,
    Thresholds,
)
from pickup.api.deps import ResourcesDep
from pickup.api.problems import problem_responses
from pickup.core.errors import Conflict, InvalidInput
from pickup.core.inventory import KEEP, PRODUCT_ID_PATTERN
from pickup.core.orders import OrderStatus
from pickup.orders.repository import database_errors
from pickup.staff import service as staff_service
from pickup.staff.auth import AdminDep, StaffDep, require_admin, require_staff, session_store
from pickup.staff.schemas import PasswordChange, StaffCreate, StaffOut, StaffUpdate

orders_router = APIRouter(
    prefix="/api/admin", tags=["staff: orders"], dependencies=[Depends(require_staff)]
)
inventory_router = APIRouter(
    prefix="/api/admin/inventory", tags=["staff: inventory"], dependencies=[Depends(require_admin)]
)
accounts_router = APIRouter(
    prefix="/api/admin/staff", tags=["staff: accounts"], dependencies=[Depends(require_admin)]
)

ETAG_HEADER = {
    "ETag": {
        "description": "the order's version; send it back as If-Match",
        "schema": {"type": "string"},
    }
}
ProductId = Annotated[str, Path(pattern=PRODUCT_ID_PATTERN, max_length=64)]
AUTH = (401, 403)
ACCOUNTS_UNAVAILABLE = "Staff accounts cannot be changed right now. Please try again shortly."


# --- Orders ------------------------------------------------------------------------------------


@orders_router.get(
    "/orders",
    response_model=OrderPage,
    summary="Orders, filtered and paged (keyset), for the board",
    responses=problem_responses(*AUTH, 422, 503),
)
async def list_orders(
    resources: ResourcesDep,
    status: Annotated[
        list[OrderStatus] | None,
        Query(description="one or more statuses (repeat the parameter)", max_length=7),
    ] = None,
    pickup_from: Annotated[
        date | None, Query(description="first pickup day (shop time), inclusive")
    ] = None,
    pickup_to: Annotated[date | None, Query(description="last pickup day, inclusive")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            # PostgreSQL text cannot hold NUL: refuse control characters here (422), not there.
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="order code, or part of a name or email",
        ),
    ] = None,
    sort: Annotated[
        Literal["pickup_at", "-pickup_at", "created_at", "-created_at"],
        Query(description="sort key; a leading '-' sorts newest first"),
    ] = "pickup_at",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=300, description="next_cursor of the previous page")
    ] = None,
) -> OrderPage:
    where = orders.build_filter(
        statuses=status,
        pickup_from=pickup_from,
        pickup_to=pickup_to,
        q=q,
        zone=ZoneInfo(resources.settings.timezone),
    )
    return await orders.list_orders(resources, where, sort=sort, cursor=cursor, limit=limit)


# OpenAPI links: an order seen by staff can be moved on, to the first status it may move to
# now, with the version it was seen at (its ETag, sent back as If-Match).
NEXT_STATUS_LINKS = {
    "ChangeOrderStatus": {
        "operationId": "change_order_status_api_admin_orders__order_id__status_put",
        "parameters": {
            "order_id": "$response.body#/order_id",
            "header.If-Match": "$response.header.ETag",
        },
        "requestBody": {
            "status": "$response.body#/allowed_transitions/0",
            "version": "$response.body#/version",
        },
        "description": "Move the order on (to the next status it may take) from the version "
        "just seen.",
    }
}


@orders_router.get(
    "/orders/{order_id}",
    response_model=AdminOrderDetail,
    summary="One order: history (who, when), stock impact per line, notifications",
    responses={
        200: {"description": "The order", "headers": ETAG_HEADER, "links": NEXT_STATUS_LINKS},
        **problem_responses(*AUTH, 404, 422, 503),
    },
)
async def order_detail(
    order_id: uuid.UUID, resources: ResourcesDep, response: Response
) -> AdminOrderDetail:
    detail = await orders.order_detail(resources, order_id)
    response.headers["ETag"] = orders.etag(detail.version)
    response.headers["Cache-Control"] = "no-store"
    return detail


@orders_router.put(
    "/orders/{order_id}/status",
    response_model=AdminOrderDetail,
    summary="Move an order on (or cancel it); needs If-Match or version",
    responses={
        200: {
            "description": "The order after the change",
            "headers": ETAG_HEADER,
            "links": NEXT_STATUS_LINKS,
        },
        **problem_responses(*AUTH, 404, 409, 412, 413, 415, 422, 428, 503),
    },
)
async def change_order_status(
    order_id: uuid.UUID,
    body: StatusChange,
    staff: StaffDep,
    resources: ResourcesDep,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", max_length=64, description='the ETag you saw, e.g. "3"'),
    ] = None,
) -> AdminOrderDetail:
    version = orders.expected_version(if_match, body.version)
    detail = await orders.set_status(
        resources, order_id, body.status, staff=staff, version=version, note=body.note
    )
    response.headers["ETag"] = orders.etag(detail.version)
    return detail


@orders_router.get(
    "/metrics",
    response_model=Metrics,
    summary="Today's figures: orders, preparation times, queues, low stock, failures",
    responses=problem_responses(*AUTH, 503),
)
async def get_metrics(resources: ResourcesDep, response: Response) -> Metrics:
    response.headers["Cache-Control"] = "no-store"
    return await metrics.metrics(resources)


# --- Inventory (admins) -----------------------------------------------------------------------


@inventory_router.get(
    "",
    response_model=InventoryList,
    summary="Every product with on-hand, reserved, available, thresholds and a status",
    responses=problem_responses(*AUTH, 503),
)
async def list_inventory(resources: ResourcesDep) -> InventoryList:
    return await inventory.list_inventory(resources)


@inventory_router.get(
    "/low-stock",
    response_model=InventoryList,
    summary="Products at or below their low-stock threshold, emptiest first",
    responses=problem_responses(*AUTH, 503),
)
async def low_stock(resources: ResourcesDep) -> InventoryList:
    return await inventory.low_stock(resources)


@inventory_router.get(
    "/reorder-suggestions",
    response_model=ReorderSuggestions,
    summary="What to order, from recent sales velocity and the cover period",
    responses=problem_responses(*AUTH, 503),
)
async def reorder_suggestions(resources: ResourcesDep) -> ReorderSuggestions:
    return await inventory.reorder_suggestions(resources)


@inventory_router.post(
    "/{product_id}/restock",
    response_model=InventoryItem,
    summary="Add delivered stock (recorded in the ledger with you and the reason)",
    responses=problem_responses(*AUTH, 404, 413, 415, 422, 503),
)
async def restock(
    product_id: ProductId, body: Restock, staff: AdminDep, resources: ResourcesDep
) -> InventoryItem:
    return await inventory.restock(resources, product_id, body.quantity, body.reason, staff)


@inventory_router.post(
    "/{product_id}/adjust",
    response_model=InventoryItem,
    summary="Correct a count up or down (recorded in the ledger); reserved units stay",
    responses=problem_responses(*AUTH, 404, 409, 413, 415, 422, 503),
)
async def adjust(
    product_id: ProductId, body: Adjustment, staff: AdminDep, resources: ResourcesDep
) -> InventoryItem:
    if body.delta == 0:
        raise InvalidInput("an adjustment must change the stock", field="body.delta")
    return await inventory.adjust(resources, product_id, body.delta, body.reason, staff)


@inventory_router.put(
    "/{product_id}/thresholds",
    response_model=InventoryItem,
    summary="Set the low-stock and critical thresholds (not where a resource manages them)",
    responses=problem_responses(*AUTH, 404, 409, 413, 415, 422, 503),
)
async def set_thresholds(
    product_id: ProductId, body: Thresholds, staff: AdminDep, resources: ResourcesDep
) -> InventoryItem:
    return await inventory.set_thresholds(
        resources,
        product_id,
        low=body.low_stock_threshold,
        critical=body.critical_threshold,
        reorder_quantity=body.reorder_quantity
        if "reorder_quantity" in body.model_fields_set
        else KEEP,
        staff=staff,
    )


@inventory_router.put(
    "/{product_id}/availability",
    response_model=InventoryItem,
    summary="Switch a product on or off the menu (e.g. sold out for today)",
    responses=problem_responses(*AUTH, 404, 413, 415, 422, 503),
)
async def set_availability(
    product_id: ProductId, body: Availability, staff: AdminDep, resources: ResourcesDep
) -> InventoryItem:
    return await inventory.set_availability(resources, product_id, body.is_available, staff)


# --- Staff accounts (admins) --------------------------------------------------------------------


def _staff_out(user: object) -> StaffOut:
    return StaffOut.model_validate(user, from_attributes=True)


@accounts_router.get(
    "",
    response_model=list[StaffOut],
    summary="Every staff account",
    responses=problem_responses(*AUTH, 503),
)
async def list_accounts(resources: ResourcesDep) -> list[StaffOut]:
    async with database_errors(ACCOUNTS_UNAVAILABLE), resources.sessions() as session:
        return [_staff_out(user) for user in await staff_service.list_staff(session)]


@accounts_router.post(
    "",
    status_code=201,
    response_model=StaffOut,
    summary="Create a staff account",
    responses=problem_responses(*AUTH, 409, 413, 415, 422, 503),
)
async def create_account(body: StaffCreate, resources: ResourcesDep) -> StaffOut:
    async with database_errors(ACCOUNTS_UNAVAILABLE), resources.sessions.begin() as session:
        user = await staff_service.create_staff(
            session,
            email=str(body.email),
            display_name=body.display_name,
            password=body.password,
            role=body.role,
        )
    return _staff_out(user)


@accounts_router.patch(
    "/{user_id}",
    response_model=StaffOut,
    summary="Rename, change the role of, disable or enable an account",
    responses=problem_responses(*AUTH, 404, 409, 413, 415, 422, 503),
)
async def update_account(
    user_id: uuid.UUID, body: StaffUpdate, admin: AdminDep, resources: ResourcesDep
) -> StaffOut:
    if user_id == admin.user_id and (body.is_active is False or body.role == "staff"):
        raise Conflict("You cannot disable or demote your own account; ask another admin.")
    async with database_errors(ACCOUNTS_UNAVAILABLE), resources.sessions.begin() as session:
        user = await staff_service.find_staff(session, user_id=user_id)
        revoke = await staff_service.update_staff(
            session, user, display_name=body.display_name, role=body.role, is_active=body.is_active
        )
    if revoke:
        await session_store(resources).revoke_user(user.id)
    return _staff_out(user)


@accounts_router.put(
    "/{user_id}/password",
    status_code=204,
    summary="Set an account's password (ends its sessions and lifts a lockout)",
    responses=problem_responses(*AUTH, 404, 413, 415, 422, 503),
)
async def set_account_password(
    user_id: uuid.UUID, body: PasswordChange, resources: ResourcesDep
) -> Response:
    async with database_errors(ACCOUNTS_UNAVAILABLE), resources.sessions.begin() as session:
        user = await staff_service.find_staff(session, user_id=user_id)
        await staff_service.set_password(session, user, body.password)
    await session_store(resources).revoke_user(user_id)
    return Response(status_code=204)


ROUTERS = (orders_router, inventory_router, accounts_router)
