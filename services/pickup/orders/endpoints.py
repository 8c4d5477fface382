from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from pickup.api.deps import ResourcesDep
from pickup.api.problems import problem_responses
from pickup.api.ratelimit import rate_limit
from pickup.cart.identity import read_cart_id
from pickup.orders import service
from pickup.orders.schemas import (
    CheckoutAccepted,
    CheckoutRequest,
    OrderDetails,
    OrderStatusView,
    PickupSlots,
)
from pickup.staff.auth import SESSION_COOKIE, session_store

router = APIRouter(prefix="/api", tags=["orders"])

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="a unique key per order attempt (e.g. a UUID); a retry with the same key "
        "returns the first answer and never creates a second order",
    ),
]


# OpenAPI links: what a client (and the stateful API fuzzer) can do with an accepted order.
_ORDER_ID = {"order_id": "$response.body#/order_id"}
CHECKOUT_LINKS = {
    "GetOrderStatus": {
        "operationId": "order_status_api_orders_status__order_id__get",
        "parameters": _ORDER_ID,
        "description": "The order's public status.",
    },
    "GetOrderDetails": {
        "operationId": "order_details_api_orders__order_id__get",
        "parameters": {**_ORDER_ID, "header.x-order-token": "$response.body#/lookup_token"},
        "description": "The whole order, opened with the lookup token returned once here.",
    },
    "GetStaffOrderDetail": {
        "operationId": "order_detail_api_admin_orders__order_id__get",
        "parameters": _ORDER_ID,
        "description": "The order on the staff side.",
    },
    "ChangeOrderStatus": {
        "operationId": "change_order_status_api_admin_orders__order_id__status_put",
        "parameters": _ORDER_ID,
        "description": "Staff move the order along (confirm, prepare, ready, pick up, cancel).",
    },
}


@router.post(
    "/orders",
    status_code=202,
    response_model=CheckoutAccepted,
    summary="Place an order for pickup",
    responses={
        202: {"description": "Accepted", "links": CHECKOUT_LINKS},
        **problem_responses(409, 413, 415, 422, 429, 503),
    },
    dependencies=[Depends(rate_limit("checkout", "rate_limit_checkout_per_minute"))],
)
async def place_order(
    body: CheckoutRequest,
    idempotency_key: IdempotencyKey,
    request: Request,
    resources: ResourcesDep,
) -> JSONResponse:
    result = await service.place_order(
        resources,
        body,
        idempotency_key=idempotency_key,
        cart_id=read_cart_id(request, resources.settings),
    )
    headers = {"Location": result.body["status_url"]}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(result.body, status_code=result.status, headers=headers)


@router.get(
    "/orders/status/{order_id}",
    response_model=OrderStatusView,
    summary="Where an order stands (no personal data)",
    responses=problem_responses(404, 422, 503),
)
async def order_status(order_id: uuid.UUID, resources: ResourcesDep) -> Response:
    body = await service.order_status_json(resources, order_id)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get(
    "/orders/{order_id}",
    response_model=OrderDetails,
    summary="The full order, for the holder of its lookup token or signed-in staff",
    responses=problem_responses(404, 422, 503),
)
async def order_details(
    order_id: uuid.UUID,
    request: Request,
    resources: ResourcesDep,
    x_order_token: Annotated[
        str | None, Header(max_length=128, description="the lookup token from checkout")
    ] = None,
    token: Annotated[
        str | None, Query(max_length=128, description="the lookup token, for links in emails")
    ] = None,
) -> OrderDetails:
    staff = await session_store(resources).get(request.cookies.get(SESSION_COOKIE))
    return await service.order_details(
        resources, order_id, x_order_token or token, staff=staff is not None
    )


@router.get(
    "/pickup-slots",
    response_model=PickupSlots,
    summary="Pickup slots of the coming days, with room left",
    responses=problem_responses(503),
)
async def pickup_slots(resources: ResourcesDep) -> PickupSlots:
    return await service.pickup_slots(resources)
