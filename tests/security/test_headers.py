"""Security headers on every kind of answer (pages, JSON, problems, static files, the guards'
413), HSTS only over TLS (directly or from a trusted proxy, as uvicorn decides), no-store on
everything staff and order-related, and templates that a strict CSP cannot break."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from pickup.api.security import (
    CONTENT_SECURITY_POLICY,
    DATA_CONTENT_SECURITY_POLICY,
    script_hashes,
)
from tests.integration.staff_helpers import Office

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates" / "pages"


@pytest.fixture
def queues_and_topics() -> bool:
    return False


@pytest.fixture
async def anonymous(office_app: Office) -> AsyncIterator[httpx.AsyncClient]:
    async with office_app.client() as client:
        yield client


def policy(response: httpx.Response) -> dict[str, str]:
    directives = [part.strip() for part in response.headers["content-security-policy"].split(";")]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in directives if d}


def is_data(response: httpx.Response) -> bool:
    return response.headers["content-type"].startswith(
        ("application/json", "application/problem+json")
    )


def assert_hardened(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["x-frame-options"] == "DENY", where
    assert len(headers.get_list("content-security-policy")) == 1, where
    directives = policy(response)
    assert directives["frame-ancestors"] == "'none'", where
    if is_data(response):
        # Data loads and runs nothing: the page policies have nothing to govern there.
        assert directives == {"default-src": "'none'", "frame-ancestors": "'none'"}, where
        assert "permissions-policy" not in headers, where
        return
    assert headers["referrer-policy"] in {"same-origin", "no-referrer", "strict-origin"}, where
    assert "camera=()" in headers["permissions-policy"], where
    assert headers["cross-origin-opener-policy"] == "same-origin", where
    assert "'unsafe-inline'" not in directives.get("script-src", ""), where
    assert "'unsafe-eval'" not in directives.get("script-src", ""), where
    assert directives["object-src"] == "'none'", where


async def test_every_kind_of_answer_carries_the_security_headers(
    anonymous: httpx.AsyncClient,
) -> None:
    answers = [
        await anonymous.get("/"),
        await anonymous.get("/menu"),
        await anonymous.get("/cart"),
        await anonymous.get("/order-status"),
        await anonymous.get("/admin/login"),
        await anonymous.get("/api/menu"),
        await anonymous.get("/static/css/app.css"),
        await anonymous.get("/static/js/app.js"),
        await anonymous.get("/no/such/page"),
        await anonymous.get(f"/api/orders/status/{uuid.uuid4()}"),
        await anonymous.get("/api/admin/orders"),
        await anonymous.post("/api/cart/add", content=b"x" * 2_000_000),
        await anonymous.post("/api/cart/add", content=b"a=b"),
        await anonymous.get("/api/openapi.json"),
        await anonymous.get("/healthz"),
    ]
    assert {answer.status_code for answer in answers} >= {200, 401, 404, 413, 415}
    # Both kinds are here: pages and static files, and JSON and problems.
    assert {is_data(answer) for answer in answers} == {True, False}
    for answer in answers:
        assert_hardened(answer)
    assert policy(answers[0])["script-src"] == "'self'"
    assert answers[6].headers["content-security-policy"] == CONTENT_SECURITY_POLICY  # app.css
    assert "strict-transport-security" not in answers[0].headers


async def test_a_route_that_chose_its_own_header_keeps_it(anonymous: httpx.AsyncClient) -> None:
    menu = await anonymous.get("/api/menu")
    assert menu.headers["cache-control"] == "no-cache"  # the menu's own, revalidated by ETag
    assert menu.headers.get_list("content-security-policy") == [DATA_CONTENT_SECURITY_POLICY]
    page = await anonymous.get("/menu")  # the pages send their own policy: one header, theirs
    assert len(page.headers.get_list("content-security-policy")) == 1


async def test_the_api_docs_page_runs_only_its_own_inline_scripts(
    anonymous: httpx.AsyncClient,
) -> None:
    docs = await anonymous.get("/api/docs")
    assert docs.status_code == 200
    assert_hardened(docs)
    hashes = script_hashes(docs.text)
    assert hashes  # the page does have inline scripts ...
    script_src = policy(docs)["script-src"].split()
    assert set(hashes) <= set(script_src)  # ... allowed by their hash, and nothing else inline
    assert not any(source.startswith("'nonce-") for source in script_src)


async def test_hsts_is_sent_only_to_requests_that_arrived_over_tls(office_app: Office) -> None:
    transport = httpx.ASGITransport(app=office_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.test") as tls:
        answer = await tls.get("/menu")
        assert "max-age=31536000" in answer.headers["strict-transport-security"]
        assert "strict-transport-security" in (await tls.get("/api/menu")).headers
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as plain:
        assert "strict-transport-security" not in (await plain.get("/menu")).headers


@pytest.mark.parametrize(("trusted", "hsts"), [("127.0.0.1", True), ("10.9.8.7", False)])
async def test_a_forwarded_proto_counts_only_from_a_trusted_proxy(
    office_app: Office, trusted: str, hsts: bool
) -> None:
    # uvicorn's own middleware, as `pickup api` runs it (--proxy-headers); ASGITransport's
    # client address is 127.0.0.1.
    proxied = ProxyHeadersMiddleware(office_app.app, trusted_hosts=trusted)
    transport = httpx.ASGITransport(app=proxied)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        answer = await client.get("/menu", headers={"X-Forwarded-Proto": "https"})
    assert ("strict-transport-security" in answer.headers) is hsts


async def test_staff_and_order_answers_are_never_stored(anonymous: httpx.AsyncClient) -> None:
    order_id = uuid.uuid4()
    for path in (
        "/admin/login",
        "/admin",
        "/api/admin/orders",
        "/api/staff/me",
        f"/api/orders/status/{order_id}",
        f"/api/orders/{order_id}",
        f"/orders/{order_id}/status",
        f"/orders/{order_id}/confirmation",
        "/order-status",
        "/checkout",
    ):
        answer = await anonymous.get(path, headers={"Accept": "text/html"})
        assert answer.headers.get_list("cache-control") == ["no-store"], path
    for path in ("/", "/menu", "/api/menu"):
        assert "no-store" not in (await anonymous.get(path)).headers.get("cache-control", "")


SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def test_no_page_template_carries_inline_code() -> None:
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) >= 12  # the customer and the staff pages
    for template in templates:
        text = template.read_text()
        for attributes in SCRIPT.findall(text):
            # Only external modules, or JSON data blocks read by them.
            assert "src=" in attributes or 'type="application/json"' in attributes, template
        assert not HANDLER.search(text), f"inline event handler in {template}"
        assert "javascript:" not in text.lower(), template
        assert " style=" not in text, f"inline style (blocked by style-src) in {template}"
