"""The customer pages: home, menu, cart, checkout, confirmation, order lookup and status.

Each page is complete HTML from the server (the menu and the cart work without JavaScript,
through the two small form endpoints below); the ES modules in ``web/static/js`` then take
over with the JSON API. No page carries inline script or event handlers, so the strict
Content-Security-Policy sent with every page holds.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pickup.adapters.carts import new_cart_id
from pickup.api.deps import ResourcesDep
from pickup.api.ratelimit import rate_limit
from pickup.cart.identity import hand_back_token, issue_cart_token, read_cart_id
from pickup.cart.schemas import CartView
from pickup.cart.service import add_item, set_item_quantity, view_cart
from pickup.core.errors import InvalidInput, NotFound, PickupError, ServiceUnavailable
from pickup.core.inventory import InsufficientStock, is_product_id
from pickup.core.pickup_times import DAYS, OpeningHours
from pickup.menu.schemas import Menu, MenuProduct
from pickup.menu.service import menu_document
from pickup.orders.schemas import OrderStatusView
from pickup.orders.service import order_status_json
from pickup.pages.templating import environment
from pickup.runtime import Resources

logger = logging.getLogger("pickup.pages")

router = APIRouter(include_in_schema=False)

# Pages show live stock and carts: always ask again. The security headers (CSP without inline
# script, nosniff, referrer policy) come from pickup.api.security, on every response.
PAGE_HEADERS = {"Cache-Control": "no-cache"}
EN_DASH = "\u2013"
# What the no-JavaScript forms report back on the cart page (?notice=...).
NOTICES = {
    "added": "Added to your cart.",
    "updated": "Your cart is updated.",
    "stock": "We could not do that: there is not enough of it left.",
    "unknown": "That product is no longer on the menu.",
    "invalid": "That quantity is not possible.",
    "unavailable": "We could not reach the shop just now. Please try again in a moment.",
}


def opening_hours_lines(hours: OpeningHours) -> list[tuple[str, str]]:
    """Days with the same hours run together: ``[("Mon-Fri", "07:30-18:00"), ...]``, with
    en dashes in the text shown."""
    lines = []
    days = list(zip(DAYS, hours.days, strict=True))
    for intervals, group in itertools.groupby(days, key=lambda pair: pair[1]):
        names = [name.capitalize() for name, _ in group]
        label = names[0] if len(names) == 1 else f"{names[0]}{EN_DASH}{names[-1]}"
        text = ", ".join(str(interval).replace("-", EN_DASH) for interval in intervals)
        lines.append((label, text or "Closed"))
    return lines


async def _cart(resources: Resources, request: Request) -> CartView | None:
    """The shopper's cart, or ``None`` when it cannot be read right now."""
    try:
        view = await view_cart(resources, read_cart_id(request, resources.settings))
    except PickupError:
        logger.warning("pages.cart_unavailable")
        return None
    return CartView.model_validate(view)


async def _menu(resources: Resources) -> Menu | None:
    try:
        document = await menu_document(resources)
    except ServiceUnavailable:
        logger.warning("pages.menu_unavailable")
        return None
    return Menu.model_validate_json(document.body)


def _products(menu: Menu | None) -> list[MenuProduct]:
    return [] if menu is None else [p for category in menu.categories for p in category.products]


async def _render(
    request: Request,
    resources: Resources,
    template: str,
    *,
    page: str,
    title: str,
    status_code: int = 200,
    cart: CartView | None = None,
    **context: Any,
) -> HTMLResponse:
    settings = resources.settings
    if cart is None:
        cart = await _cart(resources, request)
    rules = settings.slot_rules
    shop = {
        "name": settings.shop_name,
        "currency": settings.currency,
        "timezone": settings.timezone,
        "hours": opening_hours_lines(rules.hours),
        "max_quantity": settings.cart_max_quantity,
    }
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            page=page,
            title=title,
            shop=shop,
            zone=rules.zone,
            cart=cart,
            cart_count=None if cart is None else cart.totals.item_count,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, resources: ResourcesDep) -> HTMLResponse:
    menu = await _menu(resources)
    # Quick order: the first product of each category that can be ordered now.
    quick = []
    for category in menu.categories if menu else []:
        orderable = [p for p in category.products if p.stock.status != "out_of_stock"]
        if orderable:
            quick.append(orderable[0])
    return await _render(
        request,
        resources,
        "home.html",
        page="home",
        title="Order ahead",
        quick=quick[:6],
        menu_data={"products": [p.model_dump(mode="json") for p in _products(menu)]},
    )


@router.get("/menu", response_class=HTMLResponse)
async def menu_page(request: Request, resources: ResourcesDep) -> HTMLResponse:
    menu = await _menu(resources)
    products = _products(menu)
    return await _render(
        request,
        resources,
        "menu.html",
        page="menu",
        title="Menu",
        menu=menu,
        menu_data={"products": [p.model_dump(mode="json") for p in products]},
        status_code=200 if menu is not None else 503,
    )


@router.get("/cart", response_class=HTMLResponse)
async def cart_page(request: Request, resources: ResourcesDep, notice: str = "") -> HTMLResponse:
    menu = await _menu(resources)
    return await _render(
        request,
        resources,
        "cart.html",
        page="cart",
        title="Your cart",
        images={p.id: p.image for p in _products(menu) if p.image},
        notice=NOTICES.get(notice),
        notice_is_error=notice in {"stock", "unknown", "invalid", "unavailable"},
    )


async def _form(request: Request) -> tuple[str, int | None]:
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    product_id = (fields.get("product_id") or [""])[0]
    try:
        quantity: int | None = int((fields.get("quantity") or [""])[0])
    except ValueError:
        quantity = None
    return product_id, quantity


async def _cart_form(request: Request, resources: Resources, *, add: bool) -> Response:
    """The no-JavaScript cart forms: change the cart, then show it (post/redirect/get)."""
    settings = resources.settings
    product_id, quantity = await _form(request)
    notice = "added" if add else "updated"
    if not is_product_id(product_id) or quantity is None:
        notice = "invalid"
    elif not (1 if add else 0) <= quantity <= settings.cart_max_quantity:
        notice = "invalid"
    else:
        cart_id = read_cart_id(request, settings) or new_cart_id()
        try:
            if add:
                await add_item(resources, cart_id, product_id, quantity)
            else:
                await set_item_quantity(resources, cart_id, product_id, quantity)
        except InsufficientStock:
            notice = "stock"
        except NotFound:
            notice = "unknown"
        except InvalidInput:
            notice = "invalid"
        except ServiceUnavailable:
            notice = "unavailable"
        else:
            response = RedirectResponse(f"/cart?{urlencode({'notice': notice})}", 303)
            hand_back_token(response, issue_cart_token(cart_id, settings), settings)
            return response
    return RedirectResponse(f"/cart?{urlencode({'notice': notice})}", 303)


# The same budget as the JSON cart writes, so the forms are no way around it.
CART_LIMIT = [Depends(rate_limit("cart", "rate_limit_cart_per_minute"))]


@router.post("/cart/add", dependencies=CART_LIMIT)
async def cart_add_form(request: Request, resources: ResourcesDep) -> Response:
    return await _cart_form(request, resources, add=True)


@router.post("/cart/update", dependencies=CART_LIMIT)
async def cart_update_form(request: Request, resources: ResourcesDep) -> Response:
    return await _cart_form(request, resources, add=False)


@router.get("/checkout", response_class=HTMLResponse)
async def checkout_page(request: Request, resources: ResourcesDep) -> HTMLResponse:
    menu = await _menu(resources)
    return await _render(
        request,
        resources,
        "checkout.html",
        page="checkout",
        title="Checkout",
        images={p.id: p.image for p in _products(menu) if p.image},
    )


def _order_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


async def _order_status(resources: Resources, order_id: uuid.UUID) -> OrderStatusView | None:
    try:
        return OrderStatusView.model_validate_json(await order_status_json(resources, order_id))
    except NotFound:
        return None


async def _order_page(
    request: Request, resources: Resources, order_id: str, template: str, page: str, title: str
) -> HTMLResponse:
    parsed = _order_uuid(order_id)
    try:
        status = None if parsed is None else await _order_status(resources, parsed)
    except ServiceUnavailable:
        return await _render(
            request,
            resources,
            "unavailable.html",
            page=page,
            title="Temporarily unavailable",
            status_code=503,
        )
    if status is None:
        return await _render(
            request,
            resources,
            "order_lookup.html",
            page="order-status",
            title="Order not found",
            status_code=404,
            value=order_id,
            error=(
                "We could not find an order with that number. Check the link in your "
                "confirmation email, or try the order number again."
            ),
        )
    return await _render(
        request,
        resources,
        template,
        page=page,
        title=title,
        order=status,
        order_data={
            "order_id": str(status.order_id),
            "status": status.model_dump(mode="json"),
            "status_url": f"/orders/{status.order_id}/status",
            "events_url": f"/api/orders/{status.order_id}/events",
            "poll_url": f"/api/orders/status/{status.order_id}",
            "details_url": f"/api/orders/{status.order_id}",
            "shop_name": resources.settings.shop_name,
        },
    )


@router.get("/orders/{order_id}/confirmation", response_class=HTMLResponse)
async def confirmation_page(
    order_id: str, request: Request, resources: ResourcesDep
) -> HTMLResponse:
    return await _order_page(
        request, resources, order_id, "confirmation.html", "confirmation", "Order placed"
    )


@router.get("/orders/{order_id}/status", response_class=HTMLResponse)
async def status_page(order_id: str, request: Request, resources: ResourcesDep) -> HTMLResponse:
    return await _order_page(request, resources, order_id, "status.html", "status", "Order status")


@router.get("/order-status", response_class=HTMLResponse, response_model=None)
async def order_lookup(
    request: Request, resources: ResourcesDep, order: str | None = None
) -> Response:
    """Find an order by its number, or by a pasted status or confirmation link."""
    if order is None:
        return await _render(
            request,
            resources,
            "order_lookup.html",
            page="order-status",
            title="Find your order",
            value=None,
            error=None,
        )
    text = order.strip()
    # A pasted link works too: take the id out of /orders/<id>/...
    if "/orders/" in text:
        text = text.split("/orders/", 1)[1].split("/", 1)[0].split("?", 1)[0]
    parsed = _order_uuid(text)
    if parsed is None:
        status_code, error = (
            422,
            (
                "Enter your order number: the long number in your confirmation link, "
                "like 3f2b8c1e-9a4d-4c7e-8f1a-2b6d9e0c5a7f."
            ),
        )
    else:
        try:
            found = await _order_status(resources, parsed)
        except ServiceUnavailable:
            status_code, error = 503, "We cannot look orders up just now. Please try again soon."
        else:
            if found is not None:
                return RedirectResponse(f"/orders/{parsed}/status", 303)
            status_code, error = (
                404,
                ("We could not find an order with that number. Please check it and try again."),
            )
    return await _render(
        request,
        resources,
        "order_lookup.html",
        page="order-status",
        title="Find your order",
        status_code=status_code,
        value=order,
        error=error,
    )
