"""The shopper's cart: lines in Redis, priced and checked against the live menu.

Writes check availability against the products' current numbers (the menu cache when it holds
them, else one DynamoDB batch read). That check is soft: two tabs can race past it, and stock
can drop after it. The hard check is the reservation at checkout, so the cart view flags every
line that can no longer be ordered as it is instead of dropping it behind the shopper's back.
Prices always come from the products, never from the client.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Literal

from pickup.adapters.carts import GuardChanged, LineCapExceeded, OverRateLimit
from pickup.cart.schemas import LineIssueCode
from pickup.core.inventory import InsufficientStock, ProductWithInventory, Shortfall, UnknownProduct
from pickup.menu.cache import MENU_KEY
from pickup.menu.service import catalogue, last_parsed, product_stock, products_by_id
from pickup.runtime import Resources

if TYPE_CHECKING:
    from pickup.api.ratelimit import PendingHit

# The cart view as data in CartView's shape (see "The view" below).
CartViewData = dict[str, Any]


class CartStockLimit(InsufficientStock):
    """A cart write would take a line above what can be ordered now; nothing was written.

    ``available`` is the most the line may hold: the stock left, capped by the product's
    ``max_per_order`` (0 when the product is switched off).
    """

    def __init__(
        self,
        product: ProductWithInventory,
        requested: int,
        in_cart: int,
        reason: Literal["insufficient", "unavailable"],
    ) -> None:
        self.product_id = product.id
        self.requested = requested
        self.in_cart = in_cart
        self.max_per_order = product.max_per_order
        self.available = _line_cap(product)
        super().__init__([Shortfall(product.id, requested, self.available, reason)])
        self.detail = _refusal(product, self.available, in_cart, reason)

    def extensions(self) -> dict[str, Any]:
        return {
            **super().extensions(),
            "product_id": self.product_id,
            "requested": self.requested,
            "available": self.available,
            "in_cart": self.in_cart,
            "max_per_order": self.max_per_order,
        }


async def view_cart(resources: Resources, cart_id: str | None) -> CartViewData:
    lines = await resources.carts.get(cart_id) if cart_id else {}
    products = await products_by_id(resources, lines) if lines else {}
    return _view(resources, lines, products)


async def add_item(
    resources: Resources,
    cart_id: str,
    product_id: str,
    quantity: int,
    *,
    limit: PendingHit | None = None,
) -> CartViewData:
    """Add ``quantity`` units to the product's line (the line is created if needed).

    The hot path of a shop, one Redis round trip when this process has parsed the current
    menu cache: the line's cap comes from that parsed copy, and the cart's script counts the
    request's rate-limit hit (``limit``, when given), checks that the cache still holds that
    copy (its version stamp), checks the cap, writes and returns the whole cart, all in one
    step. A changed cache, or none parsed yet, takes the long way: the hit counted first on
    its own (nothing else is read for a client over the limit), then the cache read
    (refilled from DynamoDB if it missed), then the same script unguarded.
    """
    last = last_parsed()
    if last is not None and (product := last[1].get(product_id)) is not None:
        version, known = last
        try:
            lines = await _add_within_cap(
                resources,
                cart_id,
                product,
                quantity,
                guard=(MENU_KEY, "version", version),
                limit=limit,
            )
        except GuardChanged:
            pass  # the hit was counted, so the long way does not count it again
        else:
            if lines.keys() <= known.keys():  # else a line's product comes from DynamoDB
                return _view(resources, lines, known, _known_lines(known))
            return _view(resources, lines, await products_by_id(resources, lines, known=known))
    if limit is not None:
        await limit.count()
    known = await catalogue(resources)
    product = (await products_by_id(resources, [product_id], known=known)).get(product_id)
    if product is None:
        raise UnknownProduct([product_id])
    lines = await _add_within_cap(resources, cart_id, product, quantity)
    products = await products_by_id(resources, lines, known=known)
    products[product_id] = product
    return _view(resources, lines, products)


async def _add_within_cap(
    resources: Resources,
    cart_id: str,
    product: ProductWithInventory,
    quantity: int,
    guard: tuple[str, str, str] | None = None,
    limit: PendingHit | None = None,
) -> dict[str, int]:
    rate = None if limit is None else limit.claim()
    try:
        return await resources.carts.add_capped(
            cart_id, product.id, quantity, _line_cap(product), guard=guard, rate=rate
        )
    except OverRateLimit as refused:
        assert limit is not None
        raise limit.refusal(refused.ttl_ms) from None
    except LineCapExceeded as refused:
        reason = "insufficient" if product.is_available else "unavailable"
        in_cart = refused.in_cart
        raise CartStockLimit(product, in_cart + quantity, in_cart, reason) from None


async def set_item_quantity(
    resources: Resources, cart_id: str, product_id: str, quantity: int
) -> CartViewData:
    """Make the product's line exactly ``quantity`` units; 0 removes it."""
    if quantity == 0:
        return await remove_item(resources, cart_id, product_id)
    lines, products = await _lines_and(resources, cart_id, product_id)
    in_cart = lines.get(product_id, 0)
    _check_orderable(products.get(product_id), product_id, quantity, in_cart)
    lines[product_id] = await resources.carts.set_quantity(cart_id, product_id, quantity)
    return _view(resources, lines, products)


async def remove_item(resources: Resources, cart_id: str, product_id: str) -> CartViewData:
    """Remove the product's line, whether or not the product still exists."""
    await resources.carts.remove(cart_id, product_id)
    return await view_cart(resources, cart_id)


async def clear_cart(resources: Resources, cart_id: str) -> CartViewData:
    await resources.carts.clear(cart_id)
    return _view(resources, {}, {})


async def _lines_and(
    resources: Resources, cart_id: str, product_id: str
) -> tuple[dict[str, int], dict[str, ProductWithInventory]]:
    """The cart's lines and, in one read, the products of those lines and of ``product_id``."""
    lines = await resources.carts.get(cart_id)
    products = await products_by_id(resources, [*lines, product_id])
    return lines, products


def _check_orderable(
    product: ProductWithInventory | None, product_id: str, wanted: int, in_cart: int
) -> None:
    if product is None:
        raise UnknownProduct([product_id])
    if not product.is_available:
        raise CartStockLimit(product, wanted, in_cart, "unavailable")
    if wanted > _line_cap(product):
        raise CartStockLimit(product, wanted, in_cart, "insufficient")


def _line_cap(product: ProductWithInventory) -> int:
    if not product.is_available:
        return 0
    return min(product.available, product.max_per_order)


def _refusal(
    product: ProductWithInventory,
    available: int,
    in_cart: int,
    reason: Literal["insufficient", "unavailable"],
) -> str:
    held = f"; your cart has {in_cart}" if in_cart else ""
    if reason == "unavailable":
        return f"{product.name} is not available at the moment."
    if available == 0:
        return f"{product.name} is sold out."
    if product.max_per_order < product.available:
        return f"At most {available} {product.name} per order{held}."
    return f"Only {available} {product.name} left{held}."


# --- The view ---------------------------------------------------------------------------------
#
# The view is built as plain data in CartView's shape: the add (the hot path) serialises it
# straight to JSON, 12 us for a 5-line cart where the nested models and their JSON took 29 us
# (docs/performance.md, step 6). The other routes hand it to FastAPI, which validates it
# against their response model (CartView) as it would a model; the pages validate it into a
# CartView.
# tests/unit/test_cart_view.py holds the data to CartView's JSON, byte for byte.


def _view(
    resources: Resources,
    lines: dict[str, int],
    products: dict[str, ProductWithInventory],
    known: KnownLines | None = None,
) -> CartViewData:
    """The cart's view; ``known``: the line views already built from ``products``."""
    settings = resources.settings
    entries = [
        _entry(product_id, quantity, products.get(product_id))
        if known is None
        else known.entry(product_id, quantity)
        for product_id, quantity in lines.items()
        if quantity > 0
    ]
    entries.sort(key=_SORT_KEY)
    cart_lines = [line for _, line in entries]
    subtotal = item_count = 0
    ready = bool(cart_lines)
    for line in cart_lines:
        subtotal += line["line_total_cents"] or 0
        item_count += line["quantity"]
        ready = ready and line["fulfillable"]
    return {
        "lines": cart_lines,
        "totals": {
            "subtotal_cents": subtotal,
            "item_count": item_count,
            "line_count": len(cart_lines),
            "currency": settings.currency,
        },
        "checkout_ready": ready,
        "max_lines": settings.cart_max_lines,
        "max_quantity": settings.cart_max_quantity,
    }


_SORT_KEY = operator.itemgetter(0)
_Entry = tuple[tuple[str, str], dict[str, Any]]


def _entry(product_id: str, quantity: int, product: ProductWithInventory | None) -> _Entry:
    """A line's view and the key the view sorts it by (name, then id)."""
    line = _line(product_id, quantity, product)
    return (line["name"].casefold(), product_id), line


class KnownLines:
    """The line views built from one parsed copy of the menu, by (product id, quantity).

    A line's view depends on its product and quantity alone, and a shopper's cart holds the
    same few lines add after add, so the add (the hot path) builds each one once per copy of
    the menu. The views are shared: nothing may change them (they are serialised, or
    validated into models, as they are). Bounded: past ``LIMIT`` views it starts again."""

    LIMIT = 4096

    def __init__(self, products: dict[str, ProductWithInventory]) -> None:
        self.products = products
        self._entries: dict[tuple[str, int], _Entry] = {}

    def entry(self, product_id: str, quantity: int) -> _Entry:
        found = self._entries.get((product_id, quantity))
        if found is None:
            if len(self._entries) >= self.LIMIT:
                self._entries.clear()
            found = _entry(product_id, quantity, self.products[product_id])
            self._entries[(product_id, quantity)] = found
        return found


_known: KnownLines | None = None


def _known_lines(products: dict[str, ProductWithInventory]) -> KnownLines:
    """The line views of ``products`` (a parsed copy of the menu), started anew when the
    process parses another copy."""
    global _known
    known = _known
    if known is None or known.products is not products:
        known = _known = KnownLines(products)
    return known


def _line(product_id: str, quantity: int, product: ProductWithInventory | None) -> dict[str, Any]:
    if product is None:
        return {
            "product_id": product_id,
            "name": product_id,
            "unit_price_cents": None,
            "quantity": quantity,
            "line_total_cents": None,
            "stock": {"status": "out_of_stock", "available": None},
            "fulfillable": False,
            "issue": _issue_data(
                "unknown_product", "This item is no longer on the menu; remove it to check out.", 0
            ),
        }
    issue = _issue(product, quantity)
    return {
        "product_id": product_id,
        "name": product.name,
        "unit_price_cents": product.price_cents,
        "quantity": quantity,
        "line_total_cents": product.price_cents * quantity,
        "stock": product_stock(product),
        "fulfillable": issue is None,
        "issue": issue,
    }


def _issue_data(code: LineIssueCode, message: str, max_quantity: int) -> dict[str, Any]:
    return {"code": code, "message": message, "max_quantity": max_quantity}


def _issue(product: ProductWithInventory, quantity: int) -> dict[str, Any] | None:
    cap = _line_cap(product)
    if not product.is_available:
        return _issue_data(
            "unavailable",
            f"{product.name} is not available at the moment; remove it to check out.",
            0,
        )
    if product.available == 0:
        return _issue_data(
            "out_of_stock", f"{product.name} is sold out; remove it to check out.", 0
        )
    if quantity > product.available:
        return _issue_data(
            "insufficient_stock",
            f"Only {product.available} {product.name} left; reduce the quantity to "
            f"{cap} to check out.",
            cap,
        )
    if quantity > product.max_per_order:
        return _issue_data(
            "over_limit",
            f"At most {cap} {product.name} per order; reduce the quantity to check out.",
            cap,
        )
    return None
