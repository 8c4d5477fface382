"""The cart token and cookie: what a request names its cart with, and what a response sets."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from pickup.adapters.carts import new_cart_id
from pickup.cart.identity import (
    COOKIE_NAME,
    cart_id_from_token,
    issue_cart_token,
    set_cart_cookie,
)
from tests.helpers import offline_settings


def test_a_token_reads_back_only_under_the_key_that_signed_it_however_often_it_is_read() -> None:
    ours = offline_settings(secret_key="k" * 40)
    theirs = offline_settings(secret_key="x" * 40)
    cart_id = new_cart_id()
    token = issue_cart_token(cart_id, ours)
    payload, signature = token.rsplit(".", 1)
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for _ in range(3):  # a verdict once reached is the same on every later read
        assert cart_id_from_token(token, ours) == cart_id
        assert cart_id_from_token(token, theirs) is None
        assert cart_id_from_token(f"{payload}.{flipped}", ours) is None
        assert cart_id_from_token(token + "x" * 300, ours) is None
        assert cart_id_from_token("", ours) is None
        assert cart_id_from_token(None, ours) is None
    assert issue_cart_token(cart_id, ours) == token  # the same id always gets the same token


@pytest.mark.parametrize("public_url", ["http://shop.test", "https://shop.example"])
def test_the_cart_cookie_is_the_header_starlette_writes(public_url: str) -> None:
    settings = offline_settings(public_url=public_url, cart_ttl_seconds=7200)
    token = issue_cart_token(new_cart_id(), settings)
    expected = Response()
    expected.set_cookie(
        COOKIE_NAME,
        token,
        max_age=7200,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    for _ in range(2):
        response = Response()
        set_cart_cookie(response, token, settings)
        assert response.headers.getlist("set-cookie") == expected.headers.getlist("set-cookie")
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "max-age=7200" in header
    assert ("secure" in header) == public_url.startswith("https")
