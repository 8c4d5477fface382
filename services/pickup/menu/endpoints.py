from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pickup.api.deps import ResourcesDep
from pickup.api.problems import problem_responses
from pickup.core.inventory import UnknownProduct
from pickup.menu.schemas import Menu, MenuProduct
from pickup.menu.service import build_menu, menu_product

router = APIRouter(prefix="/api/menu", tags=["menu"])

ProductId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", max_length=64)]


@router.get("", response_model=Menu, responses=problem_responses(503), summary="The menu")
async def get_menu(resources: ResourcesDep) -> Menu:
    return build_menu(await resources.inventory.list_products())


@router.get(
    "/{product_id}",
    response_model=MenuProduct,
    responses=problem_responses(404, 422, 503),
    summary="One product with its live stock",
)
async def get_menu_product(product_id: ProductId, resources: ResourcesDep) -> MenuProduct:
    product = await resources.inventory.get_product(product_id)
    if product is None:
        raise UnknownProduct([product_id])
    return menu_product(product)
