"""An axe-core scan (vendored, see tests/e2e/vendor/README.md) of every customer page, in the
light and the dark theme: no serious or critical WCAG 2.2 A/AA violations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, LiveShop, goto, place_order

pytestmark = pytest.mark.timeout(120)

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
IMPACTS = ("serious", "critical")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


async def serious_violations(page: Any) -> list[str]:
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=AXE)
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    assert len(result["passes"]) > 10, "axe-core did not run"
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} -> "
        + "; ".join(node["target"][0] for node in violation["nodes"][:5])
        for violation in result["violations"]
        if violation["impact"] in IMPACTS
    ]


@pytest.mark.parametrize(
    ("scheme", "viewport"), [("light", DESKTOP), ("dark", PHONE)], ids=["light", "dark"]
)
async def test_no_customer_page_has_serious_or_critical_accessibility_violations(
    new_context: Any, live_shop: LiveShop, scheme: str, viewport: dict[str, int]
) -> None:
    order = await place_order(live_shop.url)
    # axe is injected as a script: let it past the pages' Content-Security-Policy.
    # Reduced motion: no entrance animation half-way through when axe measures contrast.
    context = await new_context(
        color_scheme=scheme, viewport=viewport, bypass_csp=True, reduced_motion="reduce"
    )
    remembered = [
        {"order_id": order["order_id"], "code": order["code"], "token": order["lookup_token"]}
    ]
    await context.add_init_script(
        f"localStorage.setItem('pickup.orders', {json.dumps(json.dumps(remembered))});"
    )
    page = await context.new_page()
    found: dict[str, list[str]] = {}

    async def scan(name: str) -> None:
        if violations := await serious_violations(page):
            found[name] = violations

    await goto(page, "/cart")
    await scan("cart (empty)")
    for path in ("/", "/menu"):
        await goto(page, path)
        await scan(path)
    await page.get_by_role("button", name="Add Flat White to cart").click()
    await page.get_by_role("button", name="Mocha", exact=True).click()
    await page.locator("[data-dialog-stock]").filter(has_text="left").wait_for()
    await scan("/menu (product dialog)")
    await page.keyboard.press("Escape")
    await goto(page, "/cart")
    await scan("/cart")
    await goto(page, "/checkout")
    await scan("/checkout")
    await page.get_by_role("button", name="Place order").click()  # shows the field errors
    await page.locator('[data-error-for="name"]').filter(has_text="name").wait_for()
    await scan("/checkout (errors)")
    for path in (
        f"/orders/{order['order_id']}/confirmation",
        f"/orders/{order['order_id']}/status",
        "/order-status",
        "/order-status?order=nope",
        "/orders/3f2b8c1e-9a4d-4c7e-8f1a-2b6d9e0c5a7f/status",
    ):
        await goto(page, path)
        await scan(path)
    assert found == {}, json.dumps(found, indent=2)
