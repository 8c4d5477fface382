"""The staff pages in a real browser: sign-in and the redirect without a session, the order
board receiving a new order live and moving it to READY while the customer's status page
follows, an inventory restock, an axe-core scan and screenshots of every staff page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select

from pickup.adapters.orm import StaffUser
from tests.e2e.conftest import DESKTOP, PHONE, LiveShop, goto, place_order
from tests.e2e.test_pages_accessibility import serious_violations

pytestmark = pytest.mark.timeout(90)

ADMIN = ("kitchen-admin@shop.example", "Kit Admin", "admin")
STAFF = ("kitchen-staff@shop.example", "Sam Counter", "staff")
PASSWORD = "correct horse battery staple"
STAFF_PAGES = {"board": "/admin", "inventory": "/admin/inventory", "metrics": "/admin/metrics"}


@pytest.fixture(scope="module")
async def staff_shop(live_shop: LiveShop) -> str:
    """The live shop, with an admin and a staff account to sign in with."""
    from pickup.runtime import Resources
    from pickup.staff.service import create_staff

    async with Resources.open(live_shop.settings) as resources, resources.sessions.begin() as db:
        for email, name, role in (ADMIN, STAFF):
            if await db.scalar(select(StaffUser).where(StaffUser.email == email)) is None:
                await create_staff(db, email=email, display_name=name, password=PASSWORD, role=role)
    return live_shop.url


@pytest.fixture
async def staff_context(browser: Any, staff_shop: str) -> AsyncIterator[Any]:
    contexts = []

    async def make(**options: Any) -> Any:
        options.setdefault("viewport", DESKTOP)
        options.setdefault("color_scheme", "light")
        context = await browser.new_context(base_url=staff_shop, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


async def sign_in_api(context: Any, account: tuple[str, str, str] = ADMIN) -> None:
    response = await context.request.post(
        "/api/staff/login", data={"email": account[0], "password": PASSWORD}
    )
    assert response.ok, await response.text()


def collect_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    return errors


async def test_staff_pages_need_a_session_and_sign_in_returns_to_the_page(
    staff_context: Any, staff_shop: str
) -> None:
    # Server-side: a client that is not a browser gets the API's problem, not a page.
    async with httpx.AsyncClient(base_url=staff_shop) as client:
        for path in STAFF_PAGES.values():
            answer = await client.get(path, headers={"Accept": "text/html"})
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/admin/login?next=")
            assert (await client.get(path)).status_code == 401

    context = await staff_context()
    page = await context.new_page()
    errors = collect_errors(page)
    for path in STAFF_PAGES.values():
        await goto(page, path)
        assert re.search(r"/admin/login\?next=" + re.escape(path.replace("/", "%2F")), page.url)
    await expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()

    # Our checks at the fields, then the server's answer, then success back to /admin/metrics.
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator('[data-error-for="email"]')).to_have_text("Enter your email address.")
    await expect(page.get_by_label("Email")).to_be_focused()
    await page.get_by_label("Email").fill(ADMIN[0])
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("[data-login-alert]")).to_contain_text("do not match")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/admin/metrics$"))
    await page.wait_for_selector("html[data-ready=true]", state="attached")
    await expect(page.locator("[data-by-status] .bar-row").first).to_be_visible()
    await expect(page.locator(".staff-user")).to_contain_text("Kit Admin")

    # An open redirect through next= is refused.
    await goto(page, "/admin/login?next=//evil.example/")
    assert page.url.endswith("/admin")
    # Sign out ends the session: the board is out of reach again.
    await page.wait_for_selector("html[data-ready=true]", state="attached")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/admin/login\?signed_out=1$"))
    await goto(page, "/admin")
    assert "/admin/login?next=" in page.url
    assert errors == []


async def test_a_new_order_arrives_live_and_clicks_move_it_to_ready_for_the_customer(
    staff_context: Any, staff_shop: str
) -> None:
    context = await staff_context()
    await sign_in_api(context, STAFF)
    board = await context.new_page()
    errors = collect_errors(board)
    await goto(board, "/admin")
    await expect(board.locator("[data-board-live]")).to_have_attribute("data-state", "live")

    order = await place_order(staff_shop)
    card = board.locator(f'[data-order-card][data-order-id="{order["order_id"]}"]')
    await expect(card).to_be_visible()
    await expect(card).to_have_class(re.compile(r"\bis-new\b"))
    await expect(card.locator("[data-code]")).to_have_text(order["code"])
    assert await card.evaluate("node => node.closest('[data-column]').dataset.column") == "pending"
    await expect(board.locator("[data-board-announce]")).to_contain_text(
        f"New order {order['code']} for Robin Fairweather"
    )

    # The customer watches their status page in another window.
    customer = await staff_context()
    remembered = [
        {"order_id": order["order_id"], "code": order["code"], "token": order["lookup_token"]}
    ]
    await customer.add_init_script(
        f"localStorage.setItem('pickup.orders', {json.dumps(json.dumps(remembered))});"
    )
    status = await customer.new_page()
    await goto(status, f"/orders/{order['order_id']}/status")
    label = status.locator("[data-status-label]")
    await expect(label).to_have_attribute("data-status", "pending")
    await expect(status.locator("[data-live-indicator]")).to_have_attribute("data-state", "live")

    # The details dialog: history and inventory impact, closed with Escape.
    await card.get_by_role("button", name=f"Details of {order['code']}").click()
    dialog = board.get_by_role("dialog")
    await expect(dialog).to_contain_text("Inventory impact")
    await expect(dialog).to_contain_text("Held for the order")
    await expect(dialog).to_contain_text("History")
    await board.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(card.get_by_role("button", name=f"Details of {order['code']}")).to_be_focused()

    for verb, column in (
        ("Confirm", "confirmed"),
        ("Start preparing", "preparing"),
        ("Mark ready", "ready"),
    ):
        await card.get_by_role("button", name=f"{verb}: {order['code']}").click()
        await expect(board.locator(f'[data-column="{column}"]').locator(card)).to_be_visible()
    await expect(label).to_have_attribute("data-status", "ready")
    assert "/status" in status.url  # no reload: the same page followed along

    # Search finds it; the cancel step asks first and "Keep" keeps it.
    await board.get_by_label("Search by code, name or email").fill(order["code"])
    await board.get_by_role("button", name="Search", exact=True).click()
    await expect(board.locator("[data-order-card]")).to_have_count(1)
    await card.get_by_role("button", name=f"Cancel {order['code']}").click()
    await expect(card.get_by_role("button", name="Yes, cancel order")).to_be_focused()
    await card.get_by_role("button", name="Keep order").click()
    await expect(card.locator("[data-confirm]")).to_be_hidden()
    await expect(label).to_have_attribute("data-status", "ready")
    assert errors == []


async def test_an_admin_restocks_with_a_reason_and_staff_see_admins_only(
    staff_context: Any,
) -> None:
    context = await staff_context()
    await sign_in_api(context, ADMIN)
    page = await context.new_page()
    errors = collect_errors(page)
    await goto(page, "/admin/inventory")
    row = page.locator('tr[data-product-id="cinnamon-bun"]')
    await expect(row).to_be_visible()
    before = int(await row.locator("[data-available]").inner_text())

    await row.get_by_role("button", name=re.compile(r"^Restock")).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_label("Units delivered")).to_be_focused()
    await dialog.get_by_label("Units delivered").fill("6")
    await dialog.get_by_role("button", name="Add stock").click()
    await expect(dialog.locator("[data-stock-alert]")).to_contain_text("Give a reason")
    await dialog.get_by_label("Reason").fill("Morning delivery")
    await dialog.get_by_role("button", name="Add stock").click()
    await expect(dialog).to_be_hidden()
    await expect(row.locator("[data-available]")).to_have_text(str(before + 6))

    staff = await staff_context()
    await sign_in_api(staff, STAFF)
    staff_page = await staff.new_page()
    await goto(staff_page, "/admin/inventory")
    await expect(staff_page.get_by_role("heading", name="Admins only")).to_be_visible()
    await expect(staff_page.locator("[data-inventory]")).to_have_count(0)
    assert errors == []


async def test_every_staff_page_passes_axe_and_is_captured(
    staff_context: Any, staff_shop: str, screenshots: Path
) -> None:
    await place_order(staff_shop)
    found: dict[str, list[str]] = {}
    taken = []
    for scheme, device, viewport in (
        ("light", "desktop", DESKTOP),
        ("dark", "desktop", DESKTOP),
        ("light", "phone", PHONE),
        ("dark", "phone", PHONE),
    ):
        context = await staff_context(
            viewport=viewport, color_scheme=scheme, bypass_csp=True, reduced_motion="reduce"
        )
        page = await context.new_page()
        await goto(page, "/admin/login?next=/admin")
        pages = [("login", None)]
        await sign_in_api(context, ADMIN)
        pages += [(name, path) for name, path in STAFF_PAGES.items()]
        pages.append(("board-dialog", "/admin"))
        for name, path in pages:
            if path:
                await goto(page, path)
            if name == "board":
                await expect(page.locator("[data-board]")).to_have_attribute("aria-busy", "false")
            if name == "board-dialog":
                await page.locator("[data-details]").first.click()
                await expect(page.get_by_role("dialog")).to_contain_text("History")
            if name == "inventory":
                await expect(page.locator("[data-inventory] tr").first).to_be_visible()
            if name == "metrics":
                await expect(page.locator("[data-metrics]")).to_have_attribute("aria-busy", "false")
            if device == "desktop" and (violations := await serious_violations(page)):
                found[f"{name} ({scheme})"] = violations
            target = screenshots / f"staff-{name}-{scheme}-{device}.png"
            await page.screenshot(path=str(target), full_page=name != "board-dialog")
            taken.append(target)
        await context.close()
    assert found == {}, json.dumps(found, indent=2)
    assert all(path.stat().st_size > 5_000 for path in taken)
