"""JsonBodyRoute: the short way for a JSON body answers exactly as FastAPI's own handling."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response

from pickup.cart.routing import JsonBodyRoute
from pickup.cart.schemas import CartAdd

# (Bodies whose 422 echoes a NaN or a lone surrogate are in tests/integration/test_cart_api.py:
# FastAPI's default handler cannot render those, the app's problem handler can.)
BODIES = [
    b'{"product_id": "scone", "quantity": 2}',
    b'{"product_id": "scone"}',
    b"",
    b"{",
    b"[1]",
    b'{"product_id": "scone"} x',
    b'{"product_id": "Scone"}',
    b'{"product_id": "scone", "quantity": 1.0}',
    b'{"product_id": "scone", "quantity": true}',
    b'{"product_id": "scone", "quantity": "2"}',
    b'{"product_id": "scone", "extra": 1}',
    b'\xef\xbb\xbf{"product_id": "scone"}',
    b'{"product_id": "sc\xffone"}',
]

calls: list[tuple[str, CartAdd]] = []


async def endpoint(body: CartAdd, request: Request) -> Response:
    calls.append((request.url.path, body))
    return Response(body.model_dump_json(), media_type="application/json")


def app() -> FastAPI:
    app = FastAPI()
    app.router.add_api_route(
        "/short", endpoint, methods=["POST"], route_class_override=JsonBodyRoute
    )
    app.add_api_route("/fastapi", endpoint, methods=["POST"])
    return app


@pytest.mark.parametrize("payload", BODIES)
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
async def test_every_body_gets_fastapis_answer(payload: bytes, content_type: str) -> None:
    transport = httpx.ASGITransport(app=app())
    headers = {"content-type": content_type}
    async with httpx.AsyncClient(transport=transport, base_url="http://unit.test") as client:
        short = await client.post("/short", content=payload, headers=headers)
        fastapi = await client.post("/fastapi", content=payload, headers=headers)
    assert (short.status_code, short.json()) == (fastapi.status_code, fastapi.json())


def test_the_schema_is_fastapis() -> None:
    schema = app().openapi()
    short, fastapi = schema["paths"]["/short"]["post"], schema["paths"]["/fastapi"]["post"]
    for operation in (short, fastapi):
        operation.pop("operationId")
    assert short == fastapi


def test_an_endpoint_it_cannot_call_the_short_way_is_refused() -> None:
    async def needs_more(body: CartAdd, request: Request, extra: int) -> Response:
        return Response()

    async def one() -> int:
        return 1

    async def depends(body: CartAdd, request: Request, x: Annotated[int, Depends(one)]) -> Response:
        return Response()

    def blocking(body: CartAdd, request: Request) -> Response:
        return Response()

    async def no_request(body: CartAdd) -> Response:
        return Response()

    for bad in (needs_more, depends, blocking, no_request):
        with pytest.raises(TypeError, match="JsonBodyRoute"):
            FastAPI().router.add_api_route(
                "/x", bad, methods=["POST"], route_class_override=JsonBodyRoute
            )
