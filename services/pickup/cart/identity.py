"""Which cart a request is about: a signed token carried in a cookie or a header.

The token is ``<cart id>.<signature>``: the cart id (already 32 URL-safe random characters, so
it needs no encoding) and its HMAC-SHA256 signature under ``PICKUP_SECRET_KEY`` (itsdangerous
``Signer``, salt ``cart``), so a client can keep it but not forge one: a tampered or
foreign-key token reads as "no cart" and the next write starts a new cart. So does a token
issued in the earlier format (an itsdangerous ``URLSafeSerializer`` payload): there is no
fallback for it. Browsers get it as an HttpOnly, SameSite=Lax cookie (Secure behind https); API
clients read ``X-Cart-Token`` from a cart write's response and send it back in the same header.
The header wins when a request carries both.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from fastapi import Request, Response
from itsdangerous import BadSignature, Signer

from pickup.adapters.carts import is_cart_id
from pickup.settings import Settings

COOKIE_NAME = "pickup_cart"
HEADER_NAME = "X-Cart-Token"
_HEADER_KEY = HEADER_NAME.lower().encode("latin-1")
SALT = "cart"
# Large enough for any token we issue, small enough that nobody makes us verify a megabyte.
_MAX_TOKEN_LENGTH = 256


def _signer(settings: Settings) -> Signer:
    return _signer_for(settings.secret_key.get_secret_value())


@lru_cache(maxsize=8)
def _signer_for(secret: str) -> Signer:
    # Built once per key: every cart request reads a token and every write issues one.
    return Signer(secret, salt=SALT, digest_method=hashlib.sha256)


def issue_cart_token(cart_id: str, settings: Settings) -> str:
    if not is_cart_id(cart_id):
        raise ValueError("not a cart id")
    return _signer(settings).sign(cart_id).decode("ascii")


def cart_id_from_token(token: str | None, settings: Settings) -> str | None:
    """The cart id a token was issued for; ``None`` when absent, malformed or not ours."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    return _verified(settings.secret_key.get_secret_value(), token)


# A token's verdict never changes under one key, and a shopper sends the same token with
# every cart request: each is checked (a SHA-256 key derivation and an HMAC) once while it is
# in use, not per request.
# Bounded: 4096 tokens of at most 256 characters.
@lru_cache(maxsize=4096)
def _verified(secret: str, token: str) -> str | None:
    try:
        # A verified value is one we signed, so it is ASCII.
        cart_id = _signer_for(secret).unsign(token).decode("ascii")
    except BadSignature:
        return None
    return cart_id if is_cart_id(cart_id) else None


def read_cart_id(request: Request, settings: Settings) -> str | None:
    """The request's cart id (header first, then cookie); ``None`` if absent or tampered with."""
    found = read_cart_token(request, settings)
    return None if found is None else found[0]


def read_cart_token(request: Request, settings: Settings) -> tuple[str, str] | None:
    """The request's cart id and the token naming it, which a response may hand back as it
    is instead of signing the id again; ``None`` if absent or tampered with."""
    token = request.headers.get(HEADER_NAME)
    if token is None:
        token = request.cookies.get(COOKIE_NAME)
    cart_id = cart_id_from_token(token, settings)
    return None if cart_id is None or token is None else (cart_id, token)


def set_cart_cookie(response: Response, token: str, settings: Settings) -> None:
    """Give the browser the cart token; it lives as long as an untouched cart does."""
    header = _cart_cookie(token, settings.cart_ttl_seconds, settings.secure_cookies)
    response.raw_headers.append((b"set-cookie", header))


def hand_back_token(response: Response, token: str, settings: Settings) -> None:
    """The cart token on a response about the cart: as the cookie and as ``X-Cart-Token``
    (appended as it is: only this sets it, once a response)."""
    set_cart_cookie(response, token, settings)
    response.raw_headers.append((_HEADER_KEY, token.encode("latin-1")))


# A value http.cookies writes as it is (no quoting): every token we issue. The characters are
# a subset of its legal ones (http.cookies._LegalChars).
_PLAIN_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_.-]+")


# Every cart write sets the cookie again (to refresh its lifetime), mostly with a token it
# set before: the header is built once per token. It is the exact bytes Starlette's
# set_cookie writes (http.cookies: the attributes in sorted order), written directly, since a
# Response and a SimpleCookie cost ~8 us a token; any other value goes through Starlette.
@lru_cache(maxsize=4096)
def _cart_cookie(token: str, max_age: int, secure: bool) -> bytes:
    if _PLAIN_COOKIE_VALUE.fullmatch(token) is None:
        return _starlette_cart_cookie(token, max_age, secure)
    tail = "; Secure" if secure else ""
    header = f"{COOKIE_NAME}={token}; HttpOnly; Max-Age={max_age:d}; Path=/; SameSite=lax{tail}"
    return header.encode("latin-1")


def _starlette_cart_cookie(token: str, max_age: int, secure: bool) -> bytes:
    scratch = Response()
    scratch.set_cookie(
        COOKIE_NAME,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    return scratch.raw_headers[-1][1]


def clear_cart_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
