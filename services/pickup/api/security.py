"""Security headers on every response, as one pure ASGI middleware.

Every document (pages, static files, streams, the API docs page) gets:

- ``Content-Security-Policy``: scripts, styles, images and connections from this origin only,
  no inline script anywhere (the pages pass data to their modules in
  ``<script type="application/json">`` blocks, which are data, not code), no plugins, no
  framing (``frame-ancestors 'none'``), forms post only here. A route that sets its own policy
  keeps it: the API docs page allows its CDN and the hashes of its own inline scripts, the
  development outbox its inline styles (it shows e-mails, which carry them).
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy`` (``same-origin`` unless the route
  chose another as strict), ``X-Frame-Options: DENY`` for browsers without
  ``frame-ancestors``, ``Cross-Origin-Opener-Policy: same-origin`` and a
  ``Permissions-Policy`` that turns off the powerful features no page uses.
- ``Strict-Transport-Security`` only when the request arrived over TLS: ``scope["scheme"]``
  is ``https`` directly, or because uvicorn's proxy-headers middleware took
  ``X-Forwarded-Proto`` from a proxy listed in ``PICKUP_FORWARDED_ALLOW_IPS``. Sent over plain
  HTTP it would mean nothing (browsers ignore it there) or, on a development host, pin a
  name to https by mistake.
- ``Cache-Control: no-store`` on everything staff and on every order answer and page (status,
  details, confirmation, checkout): personal data and session-bound answers never sit in a
  shared or back/forward cache, whatever the route chose.

A data answer (``application/json``, ``application/problem+json``: the API) is never a page:
it loads nothing, runs nothing and links nowhere, so the policies that govern what a page may
do (its sources, features, referrers and openers) have nothing to govern. It gets what keeps
it from being read as something else or shown inside someone else's page, as OWASP's REST
guidance has it: ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'``
(stricter than the pages' policy), ``nosniff`` and ``X-Frame-Options: DENY``; HSTS and
``no-store`` as above. (Each header costs every answer its writing and uvicorn's checks: the
three instead of six are 3% of a cart add, docs/performance.md.)

The header blocks are built once; most responses (the route set none of these headers, the
request came over plain HTTP, nothing to keep from caches) cost one mapping of their header
names, built without a Python-level loop, and a list concatenation (the menu and cart paths
are benchmarked).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import operator
import re
from collections.abc import Collection

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
    "accelerometer=(), gyroscope=(), magnetometer=()"
)
HSTS = "max-age=31536000; includeSubDomains"

# Paths whose answers must never be stored: the staff side, and the customer's orders.
NO_STORE_PREFIXES = (
    "/admin",
    "/api/admin",
    "/api/staff",
    "/api/orders",
    "/orders/",
    "/order-status",
    "/checkout",
    "/dev/",
)

_BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
)
_BASE_NAMES = frozenset(name for name, _ in _BASE_HEADERS)
DATA_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
_DATA_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", DATA_CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)
_DATA_TYPES = (b"application/json", b"application/problem+json")
_HSTS_HEADER = (b"strict-transport-security", HSTS.encode())
_NO_STORE = (b"cache-control", b"no-store")
_name = operator.itemgetter(0)
_value = operator.itemgetter(1)


def script_hashes(html: str) -> list[str]:
    """CSP ``'sha256-…'`` sources for each inline ``<script>`` of ``html``."""
    found = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, flags=re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in found
    ]


def docs_policy(html: str, cdn: str = "https://cdn.jsdelivr.net") -> str:
    """The policy of an API docs page: its CDN, and its own inline scripts by hash only."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {cdn} {' '.join(script_hashes(html))}".rstrip(),
            f"style-src 'self' {cdn}",
            f"img-src 'self' data: {cdn} https://fastapi.tiangolo.com",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        ]
    )


def route_policies(app: FastAPI) -> dict[str, str]:
    """The paths of ``app`` that need a policy of their own: the API docs page (rendered here
    the way FastAPI renders it, to hash its inline scripts) and the development outbox."""
    policies = {"/dev/outbox": DEV_OUTBOX_POLICY}
    if app.docs_url and app.openapi_url:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        policies[app.docs_url] = docs_policy(bytes(page.body).decode())
    return policies


DEV_OUTBOX_POLICY = "; ".join(
    [
        "default-src 'none'",
        # The outbox shows e-mails, whose HTML carries inline styles by necessity; no script.
        "style-src 'unsafe-inline'",
        "img-src 'self' data:",
        "frame-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, policies: dict[str, str] | None = None) -> None:
        """``policies`` maps an exact path to the Content-Security-Policy it gets instead."""
        self.app = app
        self.policies = {
            path: (b"content-security-policy", policy.encode())
            for path, policy in (policies or {}).items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        tls = scope.get("scheme") == "https"
        no_store = path.startswith(NO_STORE_PREFIXES)
        policy = self.policies.get(path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                # Lower-case name -> value (the last of a repeated one), without a Python loop.
                present = dict(
                    zip(map(bytes.lower, map(_name, headers)), map(_value, headers), strict=True)
                )
                data = present.get(b"content-type", b"").startswith(_DATA_TYPES)
                if (
                    policy is None
                    and not tls
                    and not no_store
                    and present.keys().isdisjoint(_BASE_NAMES)
                ):  # most answers: the route set none of them, nothing else to do
                    headers += _DATA_HEADERS if data else _BASE_HEADERS
                else:
                    headers = self._completed(headers, present.keys(), data, policy, tls, no_store)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _completed(
        headers: list[tuple[bytes, bytes]],
        names: Collection[bytes],
        data: bool,
        policy: tuple[bytes, bytes] | None,
        tls: bool,
        no_store: bool,
    ) -> list[tuple[bytes, bytes]]:
        """``headers`` with what the answer lacks; ``names``: theirs, in lower case."""
        present = set(names)
        if policy is not None and not data and b"content-security-policy" not in present:
            headers.append(policy)
            present.add(b"content-security-policy")
        block = _DATA_HEADERS if data else _BASE_HEADERS
        headers += [item for item in block if item[0] not in present]
        if tls and b"strict-transport-security" not in present:
            headers.append(_HSTS_HEADER)
        if no_store:
            headers = [item for item in headers if item[0].lower() != b"cache-control"]
            headers.append(_NO_STORE)
        return headers


class SecuredFastAPI(FastAPI):
    """FastAPI with :class:`SecurityHeaders` outside everything, Starlette's own outermost
    error middleware included: added with ``add_middleware`` it would sit inside that one, and
    the generic 500 answered for an unexpected exception would go out without the headers.
    It wraps the app's entry point rather than ``build_middleware_stack``, which
    OpenTelemetry's FastAPI instrumentation replaces."""

    _secured: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._secured is None:
            self._secured = SecurityHeaders(
                functools.partial(FastAPI.__call__, self), policies=route_policies(self)
            )
        await self._secured(scope, receive, send)
