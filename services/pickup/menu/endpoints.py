from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from pickup.api.deps import ResourcesDep, resources_of
from pickup.api.problems import problem_responses
from pickup.core.inventory import PRODUCT_ID_PATTERN, UnknownProduct
from pickup.menu.schemas import Menu, MenuProduct
from pickup.menu.service import menu_document, menu_product, products_by_id

router = APIRouter(prefix="/api/menu", tags=["menu"])

ProductId = Annotated[str, Path(pattern=PRODUCT_ID_PATTERN, max_length=64)]

# Browsers keep the menu but ask again each time; an unchanged menu costs a 304 and no body.
CACHE_CONTROL = "no-cache"

_IF_NONE_MATCH = "ETag(s) of a menu the client holds; unchanged answers 304"
IF_NONE_MATCH: dict[str, Any] = {
    "name": "if-none-match",
    "in": "header",
    "required": False,
    "schema": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": _IF_NONE_MATCH,
        "title": "If-None-Match",
    },
    "description": _IF_NONE_MATCH,
}


@router.get(
    "",
    response_model=Menu,
    responses={
        200: {
            "description": "The menu",
            "headers": {
                "ETag": {"description": "a strong tag of this menu", "schema": {"type": "string"}},
                "Cache-Control": {"description": "no-cache", "schema": {"type": "string"}},
            },
            "links": {
                "GetProduct": {
                    "operationId": "get_menu_product_api_menu__product_id__get",
                    "parameters": {"product_id": "$response.body#/categories/0/products/0/id"},
                    "description": "A product of the menu, with its live stock.",
                }
            },
        },
        304: {"description": "Not Modified: the menu still has the ETag in If-None-Match"},
        **problem_responses(503),
    },
    summary="The menu",
    openapi_extra={"parameters": [IF_NONE_MATCH]},
)
async def get_menu(request: Request) -> Response:
    # The hottest route reads its one header and the shared clients itself: FastAPI's
    # resolution of a dependency and a header parameter cost more CPU than the rest of the
    # route. The header stays documented (openapi_extra above), as FastAPI would document it.
    document = await menu_document(resources_of(request))
    headers = {"ETag": document.etag, "Cache-Control": CACHE_CONTROL}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _matches(if_none_match, document.etag):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type="application/json", headers=headers)


@router.get(
    "/{product_id}",
    response_model=MenuProduct,
    responses=problem_responses(404, 422, 503),
    summary="One product with its live stock",
)
async def get_menu_product(product_id: ProductId, resources: ResourcesDep) -> MenuProduct:
    product = (await products_by_id(resources, [product_id])).get(product_id)
    if product is None:
        raise UnknownProduct([product_id])
    return menu_product(product)


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires; ``*`` matches any menu."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))
