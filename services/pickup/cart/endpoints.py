from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Cookie, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic_core import to_json

from pickup.adapters.carts import new_cart_id
from pickup.api.deps import ResourcesDep, resources_of
from pickup.api.problems import problem_responses
from pickup.api.ratelimit import counted_in_route, pending_hit, rate_limit
from pickup.cart.identity import (
    COOKIE_NAME,
    HEADER_NAME,
    hand_back_token,
    issue_cart_token,
    read_cart_id,
    read_cart_token,
)
from pickup.cart.routing import JsonBodyRoute
from pickup.cart.schemas import CartAdd, CartRemove, CartUpdate, CartView
from pickup.cart.service import (
    CartViewData,
    add_item,
    clear_cart,
    remove_item,
    set_item_quantity,
    view_cart,
)
from pickup.core.inventory import PRODUCT_ID_PATTERN
from pickup.settings import Settings

router = APIRouter(prefix="/api/cart", tags=["cart"])

LIMITED = [Depends(rate_limit("cart", "rate_limit_cart_per_minute"))]
# The add, the hot path, counts the same limit (same bucket, same counter) inside its own
# Redis script: one round trip per add instead of two. Over the limit it answers 429 before
# anything else, a body that fails validation included (see counted_in_route). Its body is
# validated by JsonBodyRoute (FastAPI's own answers for anything the model refuses).
ADD_LIMITED = counted_in_route("cart", "rate_limit_cart_per_minute", base=JsonBodyRoute)


async def current_cart_id(
    request: Request,
    resources: ResourcesDep,
    # Declared so the OpenAPI schema documents both ways of naming the cart; the signed
    # value is read and checked by read_cart_id.
    x_cart_token: Annotated[
        str | None,
        Header(description="the cart token from an earlier cart response (API clients)"),
    ] = None,
    pickup_cart: Annotated[
        str | None, Cookie(alias=COOKIE_NAME, description="the cart cookie (browsers)")
    ] = None,
) -> str | None:
    return read_cart_id(request, resources.settings)


CartId = Annotated[str | None, Depends(current_cart_id)]


def _optional_string(name: str, where: str, title: str, description: str) -> dict[str, Any]:
    """An optional string parameter's OpenAPI entry, as FastAPI writes it for a parameter."""
    schema = {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": description,
        "title": title,
    }
    return {
        "name": name,
        "in": where,
        "required": False,
        "schema": schema,
        "description": description,
    }


# current_cart_id's parameters, for routes that read the token without it.
CART_TOKEN_PARAMETERS = [
    _optional_string(
        HEADER_NAME.lower(),
        "header",
        HEADER_NAME,
        "the cart token from an earlier cart response (API clients)",
    ),
    _optional_string(COOKIE_NAME, "cookie", "Pickup Cart", "the cart cookie (browsers)"),
]

_TOKEN_HEADERS = {
    HEADER_NAME: {
        "description": "the signed cart token; send it back as X-Cart-Token",
        "schema": {"type": "string"},
    },
    "Set-Cookie": {
        "description": f"{COOKIE_NAME}: the same token as an HttpOnly, SameSite=Lax cookie",
        "schema": {"type": "string"},
    },
}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": "The cart after the change", "headers": _TOKEN_HEADERS},
        **problem_responses(*statuses),
    }


def _keep(response: Response, cart_id: str, settings: Settings, token: str | None = None) -> None:
    """Hand the cart token back (cookie and header), refreshing the cookie's lifetime.

    ``token``: the valid token the request named the cart with, handed back as it is."""
    if token is None:
        token = issue_cart_token(cart_id, settings)
    hand_back_token(response, token, settings)


def _within_line_limit(quantity: int, settings: Settings) -> None:
    # The bound is a setting, so the request model cannot carry it; same answer as if it did.
    if quantity > settings.cart_max_quantity:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "quantity"),
                    "msg": f"Input should be less than or equal to {settings.cart_max_quantity}",
                    "type": "less_than_equal",
                    "input": quantity,
                }
            ]
        )


@router.get(
    "",
    response_model=CartView,
    responses=problem_responses(503),
    summary="The cart, priced, with each line's live stock",
)
async def get_cart(resources: ResourcesDep, cart_id: CartId) -> CartViewData:
    return await view_cart(resources, cart_id)


async def add_to_cart(body: CartAdd, request: Request) -> Response:
    # The hot path takes its clients, cart token and rate-limit hit from the request itself
    # rather than as FastAPI dependencies and parameters: resolving those cost more CPU than
    # the rest of the add. The token's header and cookie stay documented (openapi_extra).
    resources = resources_of(request)
    settings = resources.settings
    _within_line_limit(body.quantity, settings)
    cart_id, token = read_cart_token(request, settings) or (new_cart_id(), None)
    view = await add_item(
        resources, cart_id, body.product_id, body.quantity, limit=pending_hit(request)
    )
    # The view's data serialised as it is (CartView's shape, held to it by the tests): handing
    # it to FastAPI would validate it into models first.
    answer = Response(to_json(view), media_type="application/json")
    _keep(answer, cart_id, settings, token)
    return answer


def include_add(app: FastAPI) -> None:
    """Register the add on ``app`` itself, first of its routes.

    The add is the shop's hot path. A route of an included router costs every request more
    matching than a route of the app: FastAPI matches the router's routes to choose the
    router and again inside it, after passing over the routes and routers before it (the API
    docs' own three among them). The add's path, tags and OpenAPI entry are what they would
    be on this router."""
    routes = app.router.routes
    app.router.add_api_route(
        f"{router.prefix}/add",
        add_to_cart,
        methods=["POST"],
        tags=list(router.tags),
        response_model=CartView,
        responses=_responses(404, 409, 413, 415, 422, 429, 503),
        summary="Add units of a product (starts a cart on the first add)",
        description="Answers 409 `insufficient-stock` with `available` when the line would "
        "hold more than is left or than one order may hold; nothing is written then.",
        openapi_extra={"parameters": CART_TOKEN_PARAMETERS},
        route_class_override=ADD_LIMITED,
    )
    routes.insert(0, routes.pop())


@router.put(
    "/update",
    response_model=CartView,
    responses=_responses(404, 409, 413, 415, 422, 429, 503),
    dependencies=LIMITED,
    summary="Set a line's quantity (0 removes the line)",
    description="Answers 409 `insufficient-stock` with `available` when the line would hold "
    "more than is left or than one order may hold; nothing is written then.",
)
async def update_cart(
    body: CartUpdate, response: Response, resources: ResourcesDep, cart_id: CartId
) -> CartViewData:
    _within_line_limit(body.quantity, resources.settings)
    if cart_id is None and body.quantity == 0:
        return await view_cart(resources, None)
    cart_id = cart_id or new_cart_id()
    view = await set_item_quantity(resources, cart_id, body.product_id, body.quantity)
    _keep(response, cart_id, resources.settings)
    return view


@router.delete(
    "/remove",
    response_model=CartView,
    responses=_responses(413, 415, 422, 429, 503),
    dependencies=LIMITED,
    summary="Remove a line",
    description="Name the product in the body, or as `?product_id=` for clients that cannot "
    "send a body with DELETE. Removing a line that is not in the cart is not an error.",
)
async def remove_from_cart(
    response: Response,
    resources: ResourcesDep,
    cart_id: CartId,
    body: Annotated[CartRemove | None, Body()] = None,
    product_id: Annotated[
        str | None,
        Query(pattern=PRODUCT_ID_PATTERN, max_length=64, description="instead of the body"),
    ] = None,
) -> CartViewData:
    chosen = _removed_product(body, product_id)
    if cart_id is None:
        return await view_cart(resources, None)
    view = await remove_item(resources, cart_id, chosen)
    _keep(response, cart_id, resources.settings)
    return view


@router.post(
    "/clear",
    response_model=CartView,
    responses=_responses(413, 415, 429, 503),
    dependencies=LIMITED,
    summary="Empty the cart",
)
async def clear(response: Response, resources: ResourcesDep, cart_id: CartId) -> CartViewData:
    if cart_id is None:
        return await view_cart(resources, None)
    view = await clear_cart(resources, cart_id)
    _keep(response, cart_id, resources.settings)
    return view


def _removed_product(body: CartRemove | None, product_id: str | None) -> str:
    if body is None and product_id is None:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "product_id"),
                    "msg": "Field required (in the body or as ?product_id=)",
                    "type": "missing",
                }
            ]
        )
    if body is not None and product_id is not None and body.product_id != product_id:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "product_id"),
                    "msg": "must name the same product as body.product_id",
                    "type": "value_error",
                }
            ]
        )
    return body.product_id if body is not None else product_id  # type: ignore[return-value]
