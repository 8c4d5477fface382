"""Fixtures of the browser tests: the app under uvicorn on a free port (real PostgreSQL, Redis
and the AWS emulator, sample menu seeded) and system Chromium driven by Playwright.

The tests skip only when no Chromium can be found or installed (scripts/install-browser.sh);
everything else that goes wrong fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pickup.settings import Settings
from tests.helpers import free_port, served_in_thread

REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPOSITORY / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 800}
DESKTOP = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    """System Chromium, installed on first use where the machine allows it."""
    wanted = os.environ.get("PICKUP_CHROMIUM", "/usr/bin/chromium")
    found = shutil.which(wanted) or shutil.which("chromium")
    if found:
        return found
    script = REPOSITORY / "scripts" / "install-browser.sh"
    completed = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, check=False, timeout=600
    )
    if completed.returncode != 0:
        return None
    return shutil.which(wanted) or shutil.which("chromium")


@dataclass
class LiveShop:
    url: str
    settings: Settings


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`pickup dev` as a developer runs it, on a free port, with no PICKUP_* variable set but
    opening hours that always allow ordering; yields the process and its base URL."""
    import urllib.request

    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PICKUP_")}
    environment["PICKUP_OPENING_HOURS"] = "mon-sun 00:00-24:00"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pickup.cli.main",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "var"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"pickup dev exited early:\n{process.stdout.read() if process.stdout else ''}"
            )
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("pickup dev did not answer within 90 s")
        time.sleep(0.2)
    yield process, base
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
async def live_shop(services: Any, database_url: str) -> AsyncIterator[LiveShop]:
    from pickup.api.app import create_app
    from pickup.provisioning import bootstrap
    from pickup.seed.loader import seed
    from tests.conftest import delete_aws_resources, load_settings_for

    settings: Settings = load_settings_for(
        services,
        database_url=database_url,
        opening_hours="mon-sun 00:00-24:00",
        rate_limit_cart_per_minute=100_000,
        rate_limit_checkout_per_minute=100_000,
        # Every browser signs in from 127.0.0.1; the login limit has tests of its own.
        rate_limit_login_per_minute=10_000,
    )
    await bootstrap(settings)
    await seed(settings, reset=True)
    with served_in_thread(create_app(settings)) as url:
        yield LiveShop(url, settings)
    delete_aws_resources(services.aws_endpoint, settings.resource_prefix)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed and scripts/install-browser.sh could not install it")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def new_context(browser: Any, live_shop: LiveShop) -> AsyncIterator[Any]:
    """Opens browser contexts on the live shop (light, desktop unless told); all closed after."""
    contexts = []

    async def make(**options: Any) -> Any:
        options.setdefault("viewport", DESKTOP)
        options.setdefault("color_scheme", "light")
        context = await browser.new_context(base_url=live_shop.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


async def open_page(context: Any, path: str) -> Any:
    """A page at ``path`` once its scripts have finished starting (``data-ready``)."""
    page = await context.new_page()
    await goto(page, path)
    return page


async def goto(page: Any, path: str) -> None:
    await page.goto(path)
    await page.wait_for_selector("html[data-ready=true]", state="attached")


async def place_order(base_url: str) -> dict[str, Any]:
    """An order placed through the API, as the checkout page would."""
    # A first checkout on a fresh server (clients, pools) on a busy machine can take seconds.
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        added = await client.post("/api/cart/add", json={"product_id": "cappuccino", "quantity": 2})
        token = added.headers["X-Cart-Token"]
        await client.post(
            "/api/cart/add",
            json={"product_id": "cinnamon-bun", "quantity": 1},
            headers={"X-Cart-Token": token},
        )
        placed = await client.post(
            "/api/orders",
            json={
                "customer": {"name": "Robin Fairweather", "email": "robin@example.com"},
                "special_instructions": "Extra hot, please",
            },
            headers={"X-Cart-Token": token, "Idempotency-Key": f"screenshots-{token[-12:]}"},
        )
    assert placed.status_code == 202, placed.text
    return placed.json()


@pytest.fixture
def screenshots() -> Iterator[Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield SCREENSHOTS
