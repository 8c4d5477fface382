"""The customer menu: products grouped by category with their live stock status.

Reads go through the Redis menu cache (:mod:`pickup.menu.cache`) and fall back to DynamoDB
when it misses or Redis is down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import groupby

from pydantic import TypeAdapter, ValidationError

from pickup.core.inventory import ProductWithInventory
from pickup.menu import cache
from pickup.menu.cache import CachedBody
from pickup.menu.schemas import Menu, MenuCategory, MenuProduct, Stock
from pickup.runtime import Resources

logger = logging.getLogger("pickup.menu")


def product_stock(product: ProductWithInventory) -> Stock:
    """The badge a shopper sees; the number left is shown only when stock is low."""
    status = product.stock_status if product.is_available else "out_of_stock"
    return Stock(status=status, available=product.available if status == "low_stock" else None)


def menu_product(product: ProductWithInventory) -> MenuProduct:
    return MenuProduct(
        id=product.id,
        name=product.name,
        description=product.description,
        category=product.category,
        price_cents=product.price_cents,
        currency=product.currency,
        allergens=list(product.allergens),
        image=product.image,
        max_per_order=product.max_per_order,
        stock=product_stock(product),
    )


def build_menu(products: list[ProductWithInventory]) -> Menu:
    ordered = sorted(products, key=lambda p: (p.category, p.sort_order, p.name))
    # Categories appear in the order of their first product's sort order.
    groups = [
        MenuCategory(name=category, products=[menu_product(p) for p in items])
        for category, items in groupby(ordered, key=lambda p: p.category)
    ]
    groups.sort(key=lambda group: min(p.sort_order for p in products if p.category == group.name))
    return Menu(categories=groups)


# --- Cached reads -----------------------------------------------------------------------------

_PRODUCTS = TypeAdapter(list[ProductWithInventory])


async def menu_document(resources: Resources) -> CachedBody:
    """The menu as served: cached JSON bytes and their ETag, rebuilt from DynamoDB on a miss."""
    cached = await cache.read_body(resources.redis)
    if cached is not None:
        return cached
    return await _rebuild(resources)


# The last products JSON read from the cache and what it parsed to. Parsing the whole menu
# was a fifth of a cart write's time; the cached string only changes when the cache is
# rebuilt, so an identical string can reuse the (frozen, immutable) products.
_last_parsed: tuple[str, dict[str, ProductWithInventory]] | None = None


async def cached_products(resources: Resources) -> dict[str, ProductWithInventory] | None:
    """Every product from the menu cache, by id; ``None`` on a miss or a Redis outage."""
    global _last_parsed
    raw = await cache.read_products(resources.redis)
    if raw is None:
        return None
    if _last_parsed is not None and _last_parsed[0] == raw:
        return dict(_last_parsed[1])
    try:
        products = _PRODUCTS.validate_json(raw)
    except ValidationError:
        logger.warning("menu.cache_unreadable")
        return None
    parsed = {product.id: product for product in products}
    _last_parsed = (raw, parsed)
    return dict(parsed)


async def products_by_id(
    resources: Resources, product_ids: Iterable[str]
) -> dict[str, ProductWithInventory]:
    """The products that exist among ``product_ids``: from the menu cache when it holds them,
    the rest in one DynamoDB batch read. Missing ids are left out."""
    wanted = list(dict.fromkeys(product_ids))
    cached = await cached_products(resources) or {}
    found = {pid: cached[pid] for pid in wanted if pid in cached}
    if missing := [pid for pid in wanted if pid not in found]:
        found.update(await resources.inventory.get_products(missing))
    return found


async def _rebuild(resources: Resources) -> CachedBody:
    started_at = await cache.generation(resources.redis)
    # Misses are rare, so a strongly consistent read is affordable, and it keeps a copy built
    # right after an invalidation from showing the stock as it was before the change.
    products = await resources.inventory.list_products(consistent_read=started_at is not None)
    body = build_menu(products).model_dump_json().encode()
    document = CachedBody(body, cache.etag_for(body))
    if started_at is not None:
        await cache.store(
            resources.redis,
            started_at,
            document.body,
            document.etag,
            _PRODUCTS.dump_json(products).decode(),
            resources.settings.menu_cache_ttl_seconds,
        )
    return document
