"""Every cookie the app sets carries the attributes it should: HttpOnly unless a script must
read it (the CSRF token), SameSite, Path=/, and Secure whenever the shop is served over https
(``PICKUP_PUBLIC_URL`` https, or ``PICKUP_COOKIE_SECURE``). Session fixation and server-side
sign-out are tested in tests/integration/test_staff_auth.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import httpx
import pytest

from pickup.api.app import create_app
from pickup.settings import Settings
from tests.integration.staff_helpers import ADMIN_EMAIL, PASSWORD, Office


@pytest.fixture
def queues_and_topics() -> bool:
    return False


def cookies_of(response: httpx.Response) -> dict[str, dict[str, str | bool]]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            found[name] = {key: morsel[key] for key in morsel if morsel[key]}
    return found


@pytest.fixture
async def https_shop(office: object, office_settings: Settings) -> AsyncIterator[Office]:
    settings = office_settings.model_copy(update={"public_url": "https://shop.example/"})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield Office(app, app.state.resources, httpx.ASGITransport(app=app))


async def issued_cookies(shop: Office) -> dict[str, dict[str, str | bool]]:
    async with shop.client() as client:
        login = await client.post(
            "/api/staff/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}
        )
        assert login.status_code == 200
        cart = await client.post("/api/cart/add", json={"product_id": "bun", "quantity": 1})
        assert cart.status_code == 200
        return cookies_of(login) | cookies_of(cart)


@pytest.mark.parametrize("served_over", ["https", "http"])
async def test_every_cookie_carries_the_right_attributes(
    served_over: str, office_app: Office, https_shop: Office
) -> None:
    cookies = await issued_cookies(https_shop if served_over == "https" else office_app)
    assert set(cookies) == {"pickup_staff_session", "pickup_csrf", "pickup_cart"}
    for name, attributes in cookies.items():
        assert attributes["path"] == "/", name
        assert bool(attributes.get("secure")) is (served_over == "https"), name
        assert str(attributes["samesite"]).lower() in {"strict", "lax"}, name
    assert cookies["pickup_staff_session"]["httponly"] is True
    assert str(cookies["pickup_staff_session"]["samesite"]).lower() == "strict"
    assert "max-age" not in cookies["pickup_staff_session"]  # gone when the browser closes
    assert "httponly" not in cookies["pickup_csrf"]  # the staff pages' script echoes it
    assert cookies["pickup_cart"]["httponly"] is True
    assert str(cookies["pickup_cart"]["samesite"]).lower() == "lax"  # survives a link to us
