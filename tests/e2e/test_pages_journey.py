"""The customer pages in a real browser: ordering from the menu to the status page, stock
running out on the way, and a cart shared by two tabs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from pickup.adapters.aws import AWSClients
from pickup.adapters.dynamodb import InventoryStore
from pickup.adapters.redis import create_redis
from pickup.menu.cache import invalidate_menu
from tests.e2e.conftest import PHONE, LiveShop, goto, open_page, place_order

pytestmark = pytest.mark.timeout(90)


def collect_errors(page: Any) -> list[str]:
    """Uncaught script errors and console errors of ``page``, to assert there were none."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))

    def on_console(message: Any) -> None:
        # The browser logs every 4xx answer (a 422 or 409 the page handles) as a failed load.
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    return errors


async def set_available(settings: Any, product_id: str, available: int) -> None:
    """Moves a product's stock to ``available`` behind the shop's back (a sale at the till)."""
    async with AWSClients(settings) as clients:
        store = InventoryStore(clients, settings.names.products_table)
        product = await store.get_product(product_id, consistent_read=True)
        assert product is not None
        if product.available != available:
            await store.adjust(product_id, available - product.available)
    # The worker would drop the cached menu on the stock change; it is not running here.
    redis = create_redis(settings)
    try:
        await invalidate_menu(redis)
    finally:
        await redis.aclose()


async def test_a_customer_orders_from_the_menu_and_sees_the_order_received(
    new_context: Any, live_shop: LiveShop
) -> None:
    context = await new_context()
    page = await open_page(context, "/menu")
    errors = collect_errors(page)
    count = page.locator("[data-cart-count]")
    await expect(count).to_have_text("0")

    await page.get_by_role("button", name="Add Flat White to cart").click()
    await expect(count).to_have_text("1")
    await expect(page.locator("[data-toast-region]")).to_contain_text("Added Flat White")

    # The product dialog: a real <dialog>, driven by keyboard.
    await page.get_by_role("button", name="Butter Croissant", exact=True).click()
    dialog = page.get_by_role("dialog", name="Butter Croissant")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("[data-dialog-stock]")).to_have_text("In stock")
    await expect(dialog).to_contain_text("Up to")
    await page.keyboard.press("ArrowUp")  # the focused quantity box
    await expect(dialog.get_by_label("Quantity")).to_have_value("2")
    await dialog.get_by_role("button", name=re.compile(r"^Add to cart")).click()
    await expect(dialog).to_be_hidden()
    await expect(count).to_have_text("3")
    # Escape closes it again and focus goes back to where it was.
    opener = page.get_by_role("button", name="Espresso", exact=True)
    await opener.click()
    await expect(page.get_by_role("dialog", name="Espresso")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog", name="Espresso")).to_be_hidden()
    await expect(opener).to_be_focused()

    await page.get_by_role("link", name=re.compile(r"^Cart")).click()
    await page.wait_for_selector("html[data-ready=true]", state="attached")
    lines = page.locator("[data-line]")
    await expect(lines).to_have_count(2)
    await page.get_by_role("button", name="One more Flat White").click()
    await expect(count).to_have_text("4")
    await expect(page.locator('[data-line="flat-white"] [data-line-total]')).to_have_text("£6.80")
    await expect(page.locator("[data-cart-subtotal]")).to_have_text("£12.40")

    await page.get_by_role("link", name="Proceed to checkout").click()
    await page.wait_for_selector("html[data-ready=true]", state="attached")
    place = page.get_by_role("button", name=re.compile(r"Place order"))
    await expect(place).to_contain_text("£12.40")

    # Our own checks first, at the fields...
    await place.click()
    await expect(page.locator('[data-error-for="name"]')).to_have_text(re.compile("Enter the name"))
    await expect(page.get_by_label(re.compile(r"^Name"))).to_be_focused()
    await page.get_by_label(re.compile(r"^Name")).fill("Ana Souza")
    await page.get_by_label(re.compile(r"^Email")).fill("ana@shop.invalid")
    # ...then the server's, shown at the field it names.
    await place.click()
    email_error = page.locator('[data-error-for="email"]')
    await expect(email_error).to_contain_text("special-use or reserved name")
    await expect(page.get_by_label(re.compile(r"^Email"))).to_have_attribute("aria-invalid", "true")
    await page.get_by_label(re.compile(r"^Email")).fill("ana@example.com")

    await expect(page.locator("#pickup-slot option:not([disabled])").nth(1)).to_be_attached()
    instructions = page.get_by_label(re.compile(r"^Special instructions"))
    await instructions.fill("Oat milk in the flat whites, please")
    await expect(page.locator("[data-counter]")).to_have_text("35 / 500 characters")

    await place.click()
    await page.wait_for_url(re.compile(r"/orders/[0-9a-f-]+/confirmation$"))
    await page.wait_for_selector("html[data-ready=true]", state="attached")
    code = (await page.locator("[data-order-code]").inner_text()).split()[-1]
    assert re.fullmatch(r"[A-Z0-9]{4,8}", code), code
    await expect(page.locator("[data-customer-greeting]")).to_have_text(", Ana")
    await expect(page.locator('[data-detail="email"]')).to_have_text("ana@example.com")
    await expect(page.locator("[data-details-items]")).to_contain_text("Butter Croissant")
    assert "token" not in page.url
    share = await page.locator("[data-share-input]").input_value()
    assert share.endswith("/status") and "token" not in share
    await expect(count).to_have_text("0")

    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Add to calendar").click()
    download = await download_info.value
    calendar = await asyncio.to_thread(Path(await download.path()).read_text)
    assert "BEGIN:VEVENT" in calendar and f"Pick up order {code}" in calendar

    await page.get_by_role("link", name="Track your order live").click()
    await page.wait_for_selector("html[data-ready=true]", state="attached")
    await expect(page.locator("[data-status-label]")).to_have_text("Received")
    current = page.locator('[data-step-key="pending"]')
    await expect(current).to_have_attribute("aria-current", "step")
    await expect(page.locator("[data-live-indicator]")).to_have_attribute(
        "data-state", re.compile("live|polling")
    )
    assert errors == []


async def test_an_out_of_stock_product_cannot_be_added(
    new_context: Any, live_shop: LiveShop
) -> None:
    context = await new_context(viewport=PHONE)
    page = await open_page(context, "/menu")
    card = page.locator('[data-product-card="cold-brew"]')
    await expect(card.locator("[data-stock-badge]")).to_have_text("Out of stock")
    await expect(card.get_by_role("button", name="Add Cold Brew to cart")).to_be_disabled()
    low = page.locator('[data-product-card="seeded-rye"] [data-stock-badge]')
    await expect(low).to_have_text("Low stock: 2 left")
    await page.get_by_role("button", name="Cold Brew", exact=True).click()
    dialog = page.get_by_role("dialog", name="Cold Brew")
    await expect(dialog.locator("[data-dialog-stock]")).to_have_text("Out of stock")
    await expect(dialog.get_by_role("button", name=re.compile("Add to cart"))).to_be_disabled()
    # The API refuses it too, with the number that is left.
    response = await context.request.post(
        "/api/cart/add", data={"product_id": "cold-brew", "quantity": 1}
    )
    assert response.status == 409
    assert (await response.json())["available"] == 0


async def test_stock_that_runs_out_meanwhile_is_reported_at_add_and_refreshed_live(
    new_context: Any, live_shop: LiveShop
) -> None:
    await set_available(live_shop.settings, "focaccia", 1)
    context = await new_context()
    page = await open_page(context, "/menu")
    await page.get_by_role("button", name="Add Rosemary Focaccia to cart").click()
    await expect(page.locator("[data-cart-count]")).to_have_text("1")
    await page.get_by_role("button", name="Add Rosemary Focaccia to cart").click()
    await expect(page.locator(".toast-error")).to_contain_text(
        "already have all 1 Rosemary Focaccia"
    )

    # Live stock: the page asks for the menu again (on a timer, or when it is shown again).
    card = page.locator('[data-product-card="tomato-soup"]')
    await expect(card.locator("[data-stock-badge]")).to_have_text("Low stock: 3 left")
    await set_available(live_shop.settings, "tomato-soup", 0)
    await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    await expect(card.locator("[data-stock-badge]")).to_have_text("Out of stock")
    await expect(card.get_by_role("button", name="Add Roast Tomato Soup to cart")).to_be_disabled()


async def test_a_stock_conflict_at_checkout_is_shown_on_the_right_line(
    new_context: Any, live_shop: LiveShop
) -> None:
    await set_available(live_shop.settings, "almond-croissant", 4)
    context = await new_context()
    for product_id, quantity in (("espresso", 1), ("almond-croissant", 3)):
        response = await context.request.post(
            "/api/cart/add", data={"product_id": product_id, "quantity": quantity}
        )
        assert response.ok, await response.text()
    page = await open_page(context, "/checkout")
    await page.get_by_label(re.compile(r"^Name")).fill("Bo")
    await page.get_by_label(re.compile(r"^Email")).fill("bo@example.com")
    # Someone at the till buys all but one while Bo types.
    await set_available(live_shop.settings, "almond-croissant", 1)
    await page.get_by_role("button", name=re.compile("Place order")).click()

    line = page.locator('[data-summary-line="almond-croissant"]')
    await expect(line.locator("[data-line-issue]")).to_have_text(
        re.compile("Only 1 left; you asked for 3")
    )
    await expect(line).to_have_class(re.compile("has-issue"))
    await expect(page.locator('[data-summary-line="espresso"] [data-line-issue]')).to_be_hidden()
    await expect(page.locator("[data-form-alert]")).to_contain_text("ran out")
    assert page.url.endswith("/checkout")

    await page.get_by_role("link", name="Update your cart").click()
    await page.wait_for_selector("html[data-ready=true]", state="attached")
    cart_line = page.locator('[data-line="almond-croissant"]')
    await expect(cart_line.locator("[data-line-issue]")).to_be_visible()
    await expect(page.get_by_role("link", name="Proceed to checkout")).to_be_hidden()
    await cart_line.get_by_label("Quantity of Almond Croissant").fill("1")
    await cart_line.get_by_label("Quantity of Almond Croissant").press("Enter")
    await expect(cart_line.locator("[data-line-issue]")).to_be_hidden()
    await expect(page.get_by_role("link", name="Proceed to checkout")).to_be_visible()


async def test_two_tabs_keep_the_cart_in_sync(new_context: Any, live_shop: LiveShop) -> None:
    context = await new_context()
    menu = await open_page(context, "/menu")
    cart = await open_page(context, "/cart")
    await expect(cart.get_by_role("heading", name="Your cart is empty")).to_be_visible()

    await menu.get_by_role("button", name="Add Chocolate Brownie to cart").click()
    await expect(cart.locator("[data-cart-count]")).to_have_text("1")
    await expect(cart.locator('[data-line="brownie"]')).to_be_visible()
    await expect(cart.get_by_role("link", name="Proceed to checkout")).to_be_visible()

    await cart.get_by_role("button", name="One more Chocolate Brownie").click()
    await expect(menu.locator("[data-cart-count]")).to_have_text("2")
    await cart.get_by_role("button", name="Remove Chocolate Brownie").click()
    await expect(menu.locator("[data-cart-count]")).to_have_text("0")
    await expect(cart.get_by_role("heading", name="Your cart is empty")).to_be_visible()


async def test_an_expired_server_cart_is_rebuilt_from_the_browsers_copy(
    new_context: Any, live_shop: LiveShop
) -> None:
    context = await new_context()
    page = await open_page(context, "/menu")
    await page.get_by_role("button", name="Add Baguette to cart").click()
    await expect(page.locator("[data-cart-count]")).to_have_text("1")
    # The server forgets the cart (it expired); the cookie and the browser's copy remain.
    await context.clear_cookies()
    await goto(page, "/cart")
    await expect(page.locator('[data-line="baguette"]')).to_be_visible()
    await expect(page.locator("[data-cart-restored]")).to_contain_text("restored your cart")
    await expect(page.locator("[data-cart-count]")).to_have_text("1")


async def test_the_menu_and_cart_work_without_javascript(
    new_context: Any, live_shop: LiveShop
) -> None:
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto("/menu")
    await page.get_by_role("button", name="Add Lemon Drizzle to cart").click()
    await expect(page).to_have_url(re.compile(r"/cart\?notice=added"))
    await expect(page.locator('[data-line="lemon-drizzle"]')).to_be_visible()
    await expect(page.locator("[data-cart-count]")).to_have_text("1")
    await page.get_by_role("button", name="One more Lemon Drizzle").click()
    await expect(page.locator("[data-cart-count]")).to_have_text("2")


async def test_order_lookup_explains_unknown_orders(new_context: Any, live_shop: LiveShop) -> None:
    context = await new_context()
    page = await open_page(context, "/order-status")
    await page.get_by_role("button", name="Find my order").click()
    await expect(page.locator('[data-error-for="order"]')).to_contain_text("Enter your order")

    field = page.get_by_label("Order number or link")
    await field.fill("not-an-order")
    await page.get_by_role("button", name="Find my order").click()
    await expect(page.locator('[data-error-for="order"]')).to_contain_text("order number")

    await field.fill("3f2b8c1e-9a4d-4c7e-8f1a-2b6d9e0c5a7f")
    await page.get_by_role("button", name="Find my order").click()
    await expect(page.locator('[data-error-for="order"]')).to_contain_text("could not find")

    async with httpx.AsyncClient(base_url=live_shop.url) as client:
        missing = await client.get("/orders/3f2b8c1e-9a4d-4c7e-8f1a-2b6d9e0c5a7f/status")
    assert missing.status_code == 404
    assert "could not find an order" in missing.text
    assert "script-src 'self'" in missing.headers["Content-Security-Policy"]


async def test_the_status_page_polls_without_the_stream_and_says_when_it_is_reconnecting(
    new_context: Any, live_shop: LiveShop
) -> None:

    order = await place_order(live_shop.url)
    # A shared link: this browser has no lookup token, so no stream; it polls instead.
    context = await new_context()
    page = await open_page(context, f"/orders/{order['order_id']}/status")
    indicator = page.locator("[data-live-indicator]")
    await expect(indicator).to_have_attribute("data-state", "polling")
    await expect(page.locator("[data-reconnecting]")).to_be_hidden()

    await page.route("**/api/orders/status/**", lambda route: route.abort())
    await expect(page.locator("[data-reconnecting]")).to_be_visible(timeout=8_000)
    await expect(indicator).to_have_attribute("data-state", "reconnecting")
    await page.unroute("**/api/orders/status/**")
    await expect(indicator).to_have_attribute("data-state", "polling", timeout=8_000)
    await expect(page.locator("[data-reconnecting]")).to_be_hidden()
    await expect(page.locator("[data-status-label]")).to_have_text("Received")
