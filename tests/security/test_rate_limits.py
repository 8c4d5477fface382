"""Rate limits hold against a client that lies about its address: behind uvicorn's proxy-headers
middleware (as ``pickup api`` runs), ``X-Forwarded-For`` counts only from the proxies in
``PICKUP_FORWARDED_ALLOW_IPS``, so a client on the internet cannot start a fresh bucket with
every request. The limits themselves (login, checkout, cart: 429 problem+json with
Retry-After) are tested in tests/integration/test_staff_auth.py, test_checkout.py and
test_ratelimit.py."""

from __future__ import annotations

import httpx
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from pickup.api.app import create_app
from pickup.settings import Settings, SettingsError, load_settings
from tests.integration.staff_helpers import Office, assert_problem


@pytest.fixture
def queues_and_topics() -> bool:
    return False


async def login_statuses(office_app: Office, peer: str, forwarded: list[str]) -> list[int]:
    """Wrong-password sign-ins from ``peer``, each claiming another forwarded address."""
    settings: Settings = office_app.resources.settings.model_copy(
        update={"rate_limit_login_per_minute": 3}
    )
    app = create_app(settings)
    proxied = ProxyHeadersMiddleware(app, trusted_hosts=settings.forwarded_allow_ips)
    transport = httpx.ASGITransport(app=proxied, client=(peer, 40000))
    statuses = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client,
    ):
        for n, address in enumerate(forwarded):
            response = await client.post(
                "/api/staff/login",  # unknown accounts: no lockout, only the limit counts
                json={"email": f"nobody{n}@shop.example", "password": "not the password"},
                headers={"X-Forwarded-For": address},
            )
            if response.status_code == 429:
                assert_problem(response, 429, "rate-limited")
            statuses.append(response.status_code)
    return statuses


async def test_a_client_on_the_internet_cannot_forge_its_address(office_app: Office) -> None:
    spoofed = [f"198.51.100.{n}" for n in range(1, 6)]
    assert await login_statuses(office_app, "203.0.113.7", spoofed) == [401, 401, 401, 429, 429]


async def test_a_trusted_proxy_passes_each_clients_own_address(office_app: Office) -> None:
    clients = [f"198.51.100.{n}" for n in range(10, 15)]
    assert await login_statuses(office_app, "10.20.30.40", clients) == [401] * 5


def test_the_trusted_proxies_must_be_addresses_or_networks(settings: Settings) -> None:
    def load(value: str) -> Settings:
        return load_settings(
            env="test",
            database_url=settings.database_url,
            redis_url=settings.redis_url,
            forwarded_allow_ips=value,
        )

    assert load("*").forwarded_allow_ips == "*"
    assert load("10.0.0.0/8, 192.0.2.1").forwarded_allow_ips == "10.0.0.0/8, 192.0.2.1"
    with pytest.raises(SettingsError, match="PICKUP_FORWARDED_ALLOW_IPS"):
        load("10.0.0.0/8,proxy.internal")
