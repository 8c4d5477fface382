"""The cart token and cookie: what a request names its cart with, and what a response sets."""

from __future__ import annotations

import hashlib

import pytest
from itsdangerous import Signer, URLSafeSerializer
from starlette.responses import Response

from pickup.adapters.carts import is_cart_id, new_cart_id
from pickup.cart.identity import (
    COOKIE_NAME,
    cart_id_from_token,
    issue_cart_token,
    set_cart_cookie,
)
from tests.helpers import offline_settings

KEY = "k" * 40


def _flip_signature(token: str) -> str:
    """The token with its signature changed. Not the last character: its low bits are base64
    padding, so changing it alone can leave the signature intact."""
    cart_id, signature = token.rsplit(".", 1)
    return f"{cart_id}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"


def test_a_token_is_the_cart_id_and_its_hmac_sha256_signature() -> None:
    settings = offline_settings(secret_key=KEY)
    cart_id = new_cart_id()
    token = issue_cart_token(cart_id, settings)

    assert isinstance(token, str)
    assert token.startswith(f"{cart_id}.")
    assert token == Signer(KEY, salt="cart", digest_method=hashlib.sha256).sign(cart_id).decode()
    assert len(token) == 32 + 1 + 43  # the id, the separator, 32 bytes of base64 without padding
    assert cart_id_from_token(token, settings) == cart_id
    assert issue_cart_token(cart_id, settings) == token  # the same id always gets the same token


def test_only_a_cart_id_gets_a_token() -> None:
    with pytest.raises(ValueError):
        issue_cart_token("not a cart id", offline_settings(secret_key=KEY))


def test_a_token_reads_back_only_under_the_key_that_signed_it_however_often_it_is_read() -> None:
    ours = offline_settings(secret_key=KEY)
    theirs = offline_settings(secret_key="x" * 40)
    cart_id = new_cart_id()
    token = issue_cart_token(cart_id, ours)
    for _ in range(3):  # a verdict once reached is the same on every later read
        assert cart_id_from_token(token, ours) == cart_id
        assert cart_id_from_token(token, theirs) is None
        assert cart_id_from_token(issue_cart_token(cart_id, theirs), ours) is None
        assert cart_id_from_token(_flip_signature(token), ours) is None
        assert cart_id_from_token(token + "x" * 300, ours) is None
        assert cart_id_from_token("", ours) is None
        assert cart_id_from_token(None, ours) is None


def test_a_signature_does_not_carry_over_to_another_cart_id() -> None:
    settings = offline_settings(secret_key=KEY)
    cart_id, other = new_cart_id(), new_cart_id()
    signature = issue_cart_token(cart_id, settings).rsplit(".", 1)[1]

    assert is_cart_id(other) and other != cart_id
    assert cart_id_from_token(f"{other}.{signature}", settings) is None
    assert cart_id_from_token(cart_id, settings) is None  # the bare id, unsigned
    assert cart_id_from_token(f"{cart_id}.", settings) is None
    assert cart_id_from_token(f"{cart_id}.{signature}.{signature}", settings) is None


def test_an_over_long_token_is_not_verified_even_when_signed_with_our_key() -> None:
    settings = offline_settings(secret_key=KEY)
    signer = Signer(KEY, salt="cart", digest_method=hashlib.sha256)
    long_id = "a" * 64  # the longest a cart id may be
    assert is_cart_id(long_id)
    assert cart_id_from_token(signer.sign(long_id).decode(), settings) == long_id

    over_long = signer.sign("a" * 300).decode()  # validly signed, but past the length guard
    assert len(over_long) > 256
    assert cart_id_from_token(over_long, settings) is None


def test_a_token_in_the_earlier_format_reads_as_no_cart() -> None:
    settings = offline_settings(secret_key=KEY)
    cart_id = new_cart_id()
    earlier = URLSafeSerializer(KEY, salt="cart").dumps(cart_id)

    assert cart_id_from_token(earlier, settings) is None


@pytest.mark.parametrize("public_url", ["http://shop.test", "https://shop.example"])
@pytest.mark.parametrize("kind", ["issued", "quoted"])
def test_the_cart_cookie_is_the_header_starlette_writes(public_url: str, kind: str) -> None:
    settings = offline_settings(public_url=public_url, cart_ttl_seconds=7200)
    # "quoted": a value http.cookies has to quote, which never comes from issue_cart_token.
    token = issue_cart_token(new_cart_id(), settings) if kind == "issued" else 'a b;"c\\'
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
        assert response.raw_headers[-1] == expected.raw_headers[-1]
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "max-age=7200" in header
    assert ("secure" in header) == public_url.startswith("https")
