"""Full-page screenshots of every customer page, light and dark, phone and desktop, saved
under test-artifacts/screenshots/ for people to look at (the test checks they were taken)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, LiveShop, goto, place_order

pytestmark = pytest.mark.timeout(120)

EAGER_IMAGES = """() => Promise.all(Array.from(document.images, (image) => {
    image.loading = "eager";
    return image.decode().catch(() => null);
}))"""


async def test_every_customer_page_is_captured_light_and_dark_on_phone_and_desktop(
    new_context: Any, live_shop: LiveShop, screenshots: Path
) -> None:
    order = await place_order(live_shop.url)
    remembered = json.dumps(
        [{"order_id": order["order_id"], "code": order["code"], "token": order["lookup_token"]}]
    )
    pages = {
        "home": "/",
        "menu": "/menu",
        "menu-dialog": "/menu",
        "cart": "/cart",
        "checkout": "/checkout",
        "confirmation": f"/orders/{order['order_id']}/confirmation",
        "status": f"/orders/{order['order_id']}/status",
        "order-lookup": "/order-status",
        "order-not-found": "/orders/3f2b8c1e-9a4d-4c7e-8f1a-2b6d9e0c5a7f/status",
    }
    taken = []
    for scheme in ("light", "dark"):
        for device, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            context = await new_context(
                viewport=viewport, color_scheme=scheme, reduced_motion="reduce"
            )
            await context.add_init_script(
                f"localStorage.setItem('pickup.orders', {json.dumps(remembered)});"
            )
            for product_id, quantity in (("flat-white", 2), ("almond-croissant", 1)):
                response = await context.request.post(
                    "/api/cart/add", data={"product_id": product_id, "quantity": quantity}
                )
                assert response.ok, await response.text()
            page = await context.new_page()
            for name, path in pages.items():
                await goto(page, path)
                if name == "menu-dialog":
                    await page.get_by_role("button", name="Mocha", exact=True).click()
                    await page.locator("[data-dialog-stock]").filter(has_text="left").wait_for()
                if name == "confirmation":
                    await page.locator("[data-details-body]").wait_for()
                # Lazy images below the fold would be blank in a full-page capture.
                await page.evaluate(EAGER_IMAGES)
                target = screenshots / f"{name}-{scheme}-{device}.png"
                await page.screenshot(path=str(target), full_page=name != "menu-dialog")
                taken.append(target)
    assert all(path.stat().st_size > 5_000 for path in taken)
    assert len(taken) == len(pages) * 4
