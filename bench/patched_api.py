"""An experiment, never the product: the API with one candidate change applied in memory, so
``python -m bench.experiment`` can measure it against the unchanged API in the same run
without touching services/.

``products_memo``: :func:`pickup.menu.service.cached_products` keeps the last parsed products
and reuses them while Redis returns the same JSON (compared as a string), instead of
validating the whole product list again on every cart write.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def _products_memo() -> None:
    from pydantic import ValidationError

    from pickup.menu import cache
    from pickup.menu import service as menu_service

    last: dict[str, Any] = {}

    async def cached_products(resources: Any) -> dict[str, Any] | None:
        raw = await cache.read_products(resources.redis)
        if raw is None:
            return None
        if last.get("raw") == raw:
            return dict(last["products"])
        try:
            products = menu_service._PRODUCTS.validate_json(raw)
        except ValidationError:
            menu_service.logger.warning("menu.cache_unreadable")
            return None
        parsed = {product.id: product for product in products}
        last.update(raw=raw, products=parsed)
        return dict(parsed)

    menu_service.cached_products = cached_products


def create() -> FastAPI:
    _products_memo()
    from pickup.api.main import create as create_api

    return create_api()
