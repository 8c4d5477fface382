"""Which cart a request is about: a signed token carried in a cookie or a header.

The token is the cart id signed with ``PICKUP_SECRET_KEY`` (itsdangerous, salt ``cart``), so a
client can keep it but not forge one: a tampered or foreign-key token reads as "no cart" and
the next write starts a new cart. Browsers get it as an HttpOnly, SameSite=Lax cookie (Secure
behind https); API clients read ``X-Cart-Token`` from a cart write's response and send it back
in the same header. The header wins when a request carries both.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeSerializer

from pickup.adapters.carts import is_cart_id
from pickup.settings import Settings

COOKIE_NAME = "pickup_cart"
HEADER_NAME = "X-Cart-Token"
SALT = "cart"
# Large enough for any token we issue, small enough that nobody makes us verify a megabyte.
_MAX_TOKEN_LENGTH = 256


def _serializer(settings: Settings) -> URLSafeSerializer:
    return _serializer_for(settings.secret_key.get_secret_value())


@lru_cache(maxsize=8)
def _serializer_for(secret: str) -> URLSafeSerializer:
    # Built once per key: every cart request reads a token and every write issues one.
    return URLSafeSerializer(secret, salt=SALT)


def issue_cart_token(cart_id: str, settings: Settings) -> str:
    if not is_cart_id(cart_id):
        raise ValueError("not a cart id")
    return _serializer(settings).dumps(cart_id)


def cart_id_from_token(token: str | None, settings: Settings) -> str | None:
    """The cart id a token was issued for; ``None`` when absent, malformed or not ours."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    return _verified(settings.secret_key.get_secret_value(), token)


# A token's verdict never changes under one key, and a shopper sends the same token with
# every cart request: each is checked (two HMACs) once while it is in use, not per request.
# Bounded: 4096 tokens of at most 256 characters.
@lru_cache(maxsize=4096)
def _verified(secret: str, token: str) -> str | None:
    try:
        cart_id = _serializer_for(secret).loads(token)
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


# Every cart write sets the cookie again (to refresh its lifetime), mostly with a token it
# set before: the header is built once per token, by Starlette, as set_cookie writes it.
@lru_cache(maxsize=4096)
def _cart_cookie(token: str, max_age: int, secure: bool) -> bytes:
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
