"""Hostile text stays text: a customer name and instructions full of markup are escaped in the
e-mail the notifier really sends (read back from the SES emulator), and text reflected from a
URL into a page (the order lookup, the staff sign-in's ``next``) is escaped too. The staff board
and the customer's pages are checked in Chromium (tests/e2e/test_pages_security.py)."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from pickup.core.orders import Actor, OrderStatus
from pickup.notifier.handler import notification_handler
from pickup.orders.schemas import CheckoutRequest
from pickup.orders.service import place_order
from pickup.orders.transitions import change_status
from pickup.runtime import Resources
from pickup.worker.orders import confirm_order
from tests.integration.staff_helpers import Office
from tests.integration.test_notifier import as_message, event, shop, shop_settings
from tests.integration.test_worker import sent_emails

__all__ = ["shop", "shop_settings"]  # fixtures, used by name

HOSTILE_NAME = '<script>alert("n")</script><img src=x onerror=alert(1)>'
HOSTILE_NOTE = '"><svg onload=alert(2)><img src=x onerror=alert(3)>'
PAYLOADS = (HOSTILE_NAME, HOSTILE_NOTE)


class Elements(HTMLParser):
    """Every element and attribute of a document, as a browser's tokenizer sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.handlers: list[str] = []
        self.images: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]
        if tag == "img":
            self.images += [value for name, value in attrs if name == "src"]


def assert_inert(html: str, *, scripts_allowed: bool = False) -> None:
    found = Elements(html)
    assert found.handlers == []
    assert "x" not in found.images
    if not scripts_allowed:
        assert "script" not in found.tags
    for payload in PAYLOADS:
        assert payload not in html  # never verbatim ...
    assert "&lt;script&gt;" in html or "&lt;svg" in html  # ... but there, escaped


async def test_the_confirmation_email_shows_hostile_text_escaped(
    shop: Resources, services: Any
) -> None:
    email = f"mallory-{uuid.uuid4().hex[:8]}@example.com"
    request = CheckoutRequest.model_validate(
        {
            "customer": {"name": HOSTILE_NAME, "email": email},
            "items": [{"product_id": "croissant", "quantity": 1}],
            "special_instructions": HOSTILE_NOTE,
        }
    )
    placed = await place_order(shop, request, idempotency_key=str(uuid.uuid4()), cart_id=None)
    assert placed.status == 202, placed.body
    order_id = placed.body["order_id"]
    await confirm_order(shop, uuid.UUID(order_id))
    handle = notification_handler(shop)
    await handle(as_message(await event(shop, order_id, "order.confirmed")))
    await change_status(
        shop, uuid.UUID(order_id), OrderStatus.CANCELLED, actor=Actor.STAFF, note=HOSTILE_NOTE
    )
    await handle(as_message(await event(shop, order_id, "order.cancelled")))

    mails = await sent_emails(services.aws_endpoint, email)
    assert len(mails) == 2
    for mail in mails:
        assert_inert(mail["body"])
        assert "&lt;script&gt;alert(&#34;n&#34;)&lt;/script&gt;" in mail["body"]


@pytest.fixture
def queues_and_topics() -> bool:
    return False


async def test_text_reflected_from_the_url_is_escaped(office_app: Office) -> None:
    async with office_app.client() as client:
        lookup = await client.get("/order-status", params={"order": HOSTILE_NAME})
        assert lookup.status_code == 422
        assert_inert(lookup.text, scripts_allowed=True)
        sign_in = await client.get("/admin/login", params={"next": "/admin?" + HOSTILE_NOTE})
        assert sign_in.status_code == 200
        assert HOSTILE_NOTE not in sign_in.text
        assert Elements(sign_in.text).handlers == []


async def test_the_api_answers_hostile_text_as_json_never_as_html(
    office_app: Office, customer: httpx.AsyncClient
) -> None:
    answer = await customer.post("/api/cart/add", json={"product_id": HOSTILE_NAME, "quantity": 1})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-content-type-options"] == "nosniff"
