"""The pages under their real Content-Security-Policy in Chromium: walking every customer page
and every staff page reports no CSP violation and no script error, and hostile text in a
customer's name and instructions shows as text on the staff board, in the order's details and
on the customer's pages, never runs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select

from pickup.adapters.orm import StaffUser
from tests.e2e.conftest import LiveShop, goto

pytestmark = pytest.mark.timeout(120)

ADMIN = ("csp-admin@shop.example", "Csp Admin", "admin")
PASSWORD = "correct horse battery staple"
HOSTILE_NAME = '<script>alert("n")</script><img src=x onerror=alert(1)>'
HOSTILE_NOTE = '"><svg onload=alert(2)><img src=x onerror=alert(3)> & <b>bold</b>'

# Runs before any page script, outside the page's CSP: records every violation the browser
# reports, with what was blocked and which directive blocked it.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__csp.push(`${event.violatedDirective} blocked ${event.blockedURI} at ${where}`);
});
"""


@pytest.fixture(scope="module")
async def signed_up(live_shop: LiveShop) -> str:
    from pickup.runtime import Resources
    from pickup.staff.service import create_staff

    async with Resources.open(live_shop.settings) as resources, resources.sessions.begin() as db:
        if await db.scalar(select(StaffUser).where(StaffUser.email == ADMIN[0])) is None:
            await create_staff(
                db, email=ADMIN[0], display_name=ADMIN[1], password=PASSWORD, role=ADMIN[2]
            )
    return live_shop.url


async def hostile_order(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        placed = await client.post(
            "/api/orders",
            json={
                "customer": {"name": HOSTILE_NAME, "email": "mallory@example.com"},
                "items": [{"product_id": "cappuccino", "quantity": 1}],
                "special_instructions": HOSTILE_NOTE,
            },
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert placed.status_code == 202, placed.text
    return placed.json()


async def watched_context(browser: Any, base_url: str) -> tuple[Any, list[str]]:
    """A context (CSP enforced) that records violations, script errors and dialogs."""
    context = await browser.new_context(base_url=base_url)
    context.set_default_timeout(10_000)
    await context.add_init_script(RECORD_VIOLATIONS)
    problems: list[str] = []

    def watch(page: Any) -> None:
        page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )

        async def dismiss(dialog: Any) -> None:
            problems.append(f"dialog: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", dismiss)

    context.on("page", watch)
    return context, problems


async def violations(page: Any) -> list[str]:
    return list(await page.evaluate("window.__csp || []"))


async def test_no_page_reports_a_csp_violation(browser: Any, signed_up: str) -> None:
    order = await hostile_order(signed_up)
    context, problems = await watched_context(browser, signed_up)
    remembered = [
        {"order_id": order["order_id"], "code": order["code"], "token": order["lookup_token"]}
    ]
    await context.add_init_script(
        # (about:blank has no storage: only set it on the shop's pages)
        f"try {{ localStorage.setItem('pickup.orders', {json.dumps(json.dumps(remembered))}); }}"
        " catch (error) {}"
    )
    page = await context.new_page()
    seen = []
    for path in (
        "/",
        "/menu",
        "/cart",
        "/checkout",
        "/order-status",
        f"/orders/{order['order_id']}/confirmation",
        f"/orders/{order['order_id']}/status",
        "/admin/login",
    ):
        await goto(page, path)
        seen += [f"{path}: {line}" for line in await violations(page)]
    # A shopper's actions too: add to the cart from the menu, open the cart.
    await goto(page, "/menu")
    await page.locator("[data-add-button]:not([disabled])").first.click()
    await expect(page.locator("[data-cart-count]").first).not_to_have_text("0")
    await goto(page, "/cart")
    seen += [f"/cart after adding: {line}" for line in await violations(page)]

    response = await context.request.post(
        "/api/staff/login", data={"email": ADMIN[0], "password": PASSWORD}
    )
    assert response.ok, await response.text()
    for path in ("/admin", "/admin/inventory", "/admin/metrics"):
        await goto(page, path)
        seen += [f"{path}: {line}" for line in await violations(page)]
    await context.close()
    assert seen == []
    assert problems == []


async def test_hostile_text_from_a_customer_is_shown_not_run(browser: Any, signed_up: str) -> None:
    context, problems = await watched_context(browser, signed_up)
    response = await context.request.post(
        "/api/staff/login", data={"email": ADMIN[0], "password": PASSWORD}
    )
    assert response.ok
    board = await context.new_page()
    await goto(board, "/admin")
    await expect(board.locator("[data-board-live]")).to_have_attribute("data-state", "live")

    order = await hostile_order(signed_up)  # arrives live, through the stream
    card = board.locator(f'[data-order-card][data-order-id="{order["order_id"]}"]')
    await expect(card.locator("[data-name]")).to_have_text(HOSTILE_NAME)
    await expect(card.locator("[data-note]")).to_have_text(HOSTILE_NOTE)
    await board.reload()
    await board.wait_for_selector("html[data-ready=true]", state="attached")
    await expect(card.locator("[data-name]")).to_have_text(HOSTILE_NAME)
    await card.get_by_role("button", name=f"Details of {order['code']}").click()
    dialog = board.get_by_role("dialog")
    await expect(dialog).to_contain_text(HOSTILE_NOTE)
    await expect(dialog).to_contain_text(HOSTILE_NAME)
    # Nothing of it became markup: no injected element exists anywhere on the board.
    injected = "#board-root img[src=x], svg[onload], script:not([src]):not([type])"
    assert await board.locator(injected.replace("#board-root ", "")).count() == 0
    assert await board.locator("b", has_text="bold").count() == 0

    remembered = [
        {"order_id": order["order_id"], "code": order["code"], "token": order["lookup_token"]}
    ]
    await context.add_init_script(
        # (about:blank has no storage: only set it on the shop's pages)
        f"try {{ localStorage.setItem('pickup.orders', {json.dumps(json.dumps(remembered))}); }}"
        " catch (error) {}"
    )
    customer = await context.new_page()
    for path in ("confirmation", "status"):
        await goto(customer, f"/orders/{order['order_id']}/{path}")
        assert await customer.locator("img[src=x], svg[onload]").count() == 0
    await goto(customer, f"/orders/{order['order_id']}/confirmation")
    await expect(customer.locator("main")).to_contain_text(HOSTILE_NAME)
    await context.close()
    assert problems == []
