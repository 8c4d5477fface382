"""The customer menu: products grouped by category with their live stock status.

Reads go through the Redis menu cache (:mod:`pickup.menu.cache`) and fall back to DynamoDB
when it misses or Redis is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pickup.core.inventory import ProductWithInventory
from pickup.menu import cache
from pickup.menu.cache import CachedBody
from pickup.menu.schemas import Menu, MenuCategory, MenuProduct
from pickup.runtime import Resources

logger = logging.getLogger("pickup.menu")


def product_stock(product: ProductWithInventory) -> dict[str, Any]:
    """The badge a shopper sees (a :class:`~pickup.menu.schemas.Stock`, as data): the number
    left is shown only when stock is low; a product switched off counts as out of stock."""
    status = product.stock_status
    return {"status": status, "available": product.available if status == "low_stock" else None}


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
        stock=product_stock(product),  # type: ignore[arg-type]  # validated as Stock
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
    """The menu as served: cached JSON bytes and their ETag, rebuilt from DynamoDB on a miss.

    The Resources' :class:`~pickup.menu.cache.LocalCopy` is served without asking Redis for
    ``menu_revalidate_ms`` after Redis last confirmed it (counted as a menu hit); after that
    only the ETag is read while it still names the copy (a digest of its bytes), so the menu
    itself crosses the network only when it changed. A copy is kept as fresh only when Redis
    confirmed it: a rebuild that could not store its copy (an invalidation meanwhile, or an
    outage) is asked about again on the next request, as before the interval existed."""
    local = resources.menu_copy
    now = local.clock()
    fresh = local.fresh(now)
    if fresh is not None:
        return fresh
    epoch = local.epoch
    fresh_until = now + resources.settings.menu_revalidate_ms / 1000
    last = local.document
    if last is not None:
        etag = await cache.read_etag(resources.redis)
        if etag == last.etag:
            local.keep(last, epoch=epoch, fresh_until=fresh_until)
            return last
        cached = None if etag is None else await cache.read_body(resources.redis, count=False)
    else:
        cached = await cache.read_body(resources.redis)
    confirmed = cached is not None
    if cached is None:
        cached, _products, confirmed = await _refill(resources)
    local.keep(cached, epoch=epoch, fresh_until=fresh_until if confirmed else None)
    return cached


# The products of the last cached copy this process parsed, under that copy's version stamp.
# Parsing the whole menu was a fifth of a cart write's time, and reading the products JSON
# (~10 kB) the next biggest part; a stored copy never changes under its stamp (a rebuild
# stores a new stamp), so while the stamp is the same the parsed (frozen) products are reused
# and only the stamp crosses the network.
_last_parsed: tuple[str, dict[str, ProductWithInventory]] | None = None


def last_parsed() -> tuple[str, dict[str, ProductWithInventory]] | None:
    """The version stamp and products of the cached copy this process parsed last, without
    asking Redis whether it is still the current one (a caller checks the stamp itself,
    e.g. inside its own Redis script). Shared: callers must not change it."""
    return _last_parsed


async def cached_products(resources: Resources) -> dict[str, ProductWithInventory] | None:
    """Every product from the menu cache, by id; ``None`` on a miss or a Redis outage.

    The mapping is shared: callers must not change it."""
    global _last_parsed
    version = await cache.read_products_version(resources.redis)
    last = _last_parsed
    if version is not None and last is not None and last[0] == version:
        return last[1]
    version, raw = await cache.read_versioned_products(resources.redis)
    if raw is None:
        return None
    try:
        products = _PRODUCTS.validate_json(raw)
    except ValidationError:
        logger.warning("menu.cache_unreadable")
        return None
    parsed = {product.id: product for product in products}
    if version is not None:
        _last_parsed = (version, parsed)
    return parsed


async def catalogue(resources: Resources) -> dict[str, ProductWithInventory]:
    """Every product the menu cache holds (refilled from DynamoDB when it missed); empty when
    Redis is unreachable. Shared: callers must not change it."""
    cached = await cached_products(resources)
    if cached is None:
        cached = await _refilled_products(resources) or {}
    return cached


async def products_by_id(
    resources: Resources,
    product_ids: Iterable[str],
    *,
    known: dict[str, ProductWithInventory] | None = None,
) -> dict[str, ProductWithInventory]:
    """The products that exist among ``product_ids``: from ``known`` (the :func:`catalogue`
    when not given), the rest in one DynamoDB batch read. Missing ids are left out."""
    wanted = list(dict.fromkeys(product_ids))
    cached = await catalogue(resources) if known is None else known
    found = {pid: cached[pid] for pid in wanted if pid in cached}
    if missing := [pid for pid in wanted if pid not in found]:
        found.update(await resources.inventory.get_products(missing))
    return found


# Rebuilds in flight in this process, by (resources, generation they started from): every
# request that misses the cache at the same generation waits for one DynamoDB scan instead
# of starting its own (after a checkout's invalidation a rush would otherwise scan once per
# menu read). A request that sees a newer generation starts a rebuild of its own, so nobody
# is handed a copy read before a change it has already seen invalidated. The flag says
# whether the rebuild stored its copy (then it is the cache's current copy).
_Rebuilt = tuple[CachedBody, list[ProductWithInventory], bool]
_refills: dict[tuple[int, str], asyncio.Task[_Rebuilt]] = {}


async def _refill(resources: Resources, started_at: str | None = None) -> _Rebuilt:
    if started_at is None:
        started_at = await cache.generation(resources.redis)
    if started_at is None:  # Redis is unreachable: nothing to store, nobody to share with
        return await _rebuild(resources, None)
    key = (id(resources), started_at)
    task = _refills.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.ensure_future(_rebuild(resources, started_at))
        _refills[key] = task

        def forget(done: asyncio.Task[_Rebuilt], key: tuple[int, str] = key) -> None:
            if _refills.get(key) is done:
                del _refills[key]

        task.add_done_callback(forget)
    # A waiter that goes away (its client disconnected) must not cancel everyone's rebuild.
    return await asyncio.shield(task)


async def _refilled_products(resources: Resources) -> dict[str, ProductWithInventory] | None:
    """After a miss: every product, from a (shared) rebuild that also refills the cache;
    ``None`` when Redis is unreachable (then a batch read of the few wanted is cheaper)."""
    started_at = await cache.generation(resources.redis)
    if started_at is None:
        return None
    _document, products, _stored = await _refill(resources, started_at)
    return {product.id: product for product in products}


async def _rebuild(resources: Resources, started_at: str | None) -> _Rebuilt:
    # Misses are rare, so a strongly consistent read is affordable, and it keeps a copy built
    # right after an invalidation from showing the stock as it was before the change.
    products = await resources.inventory.list_products(consistent_read=started_at is not None)
    body = build_menu(products).model_dump_json().encode()
    document = CachedBody(body, cache.etag_for(body))
    stored = False
    if started_at is not None:
        stored = await cache.store(
            resources.redis,
            started_at,
            document.body,
            document.etag,
            _PRODUCTS.dump_json(products).decode(),
            resources.settings.menu_cache_ttl_seconds,
        )
    return document, products, stored
