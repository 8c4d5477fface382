"""The order board losing its live updates and getting them back, in a real browser.

The app runs under a uvicorn of this module's own, behind a small ASGI layer that can end
every open ``/api/admin/events`` response, as a proxy or a restarting server would; the
browser's reconnections are then refused (Playwright routes the events URL to a network
error) for as long as the test says. Meanwhile the board must say it is disconnected, in
words and as a status; once the stream is let through again the banner goes, the board
catches up on the change it missed, and later changes arrive live again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from pickup.adapters.orm import StaffUser
from tests.e2e.conftest import DESKTOP, LiveShop, goto, place_order
from tests.helpers import served_in_thread

pytestmark = pytest.mark.timeout(120)

EVENTS_PATH = "/api/admin/events"
ACCOUNT = ("board-reconnect@shop.example", "Rae Connect", "staff")
PASSWORD = "correct horse battery staple"
BANNER_TEXT = "Live connection lost. Reconnecting…"


class StreamCutter:
    """ASGI layer in front of the app: :meth:`cut` ends every open event stream response
    (cleanly, as a server closing the connection would), and the app carries on serving."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.open_streams: set[asyncio.Event] = set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()
        if scope["type"] != "http" or scope["path"] != EVENTS_PATH:
            await self.app(scope, receive, send)
            return
        cut = asyncio.Event()
        started = False

        async def watched_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        response = asyncio.ensure_future(self.app(scope, receive, watched_send))
        cutting = asyncio.ensure_future(cut.wait())
        self.open_streams.add(cut)
        try:
            await asyncio.wait({response, cutting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.open_streams.discard(cut)
            cutting.cancel()
        if response.done():
            response.result()
            return
        response.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await response
        if started:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def cut(self) -> int:
        """End every open event stream; how many there were."""
        assert self.loop is not None
        streams = list(self.open_streams)
        for stream in streams:
            self.loop.call_soon_threadsafe(stream.set)
        return len(streams)


@dataclass
class CuttableShop:
    url: str
    cutter: StreamCutter


@pytest.fixture
def cuttable_shop(live_shop: LiveShop) -> Iterator[CuttableShop]:
    """The live shop's app (same database, Redis and AWS resources) on a server of its own."""
    from pickup.api.app import create_app

    cutter = StreamCutter(create_app(live_shop.settings))
    with served_in_thread(cutter) as url:
        yield CuttableShop(url, cutter)


@pytest.fixture
async def staff_account(live_shop: LiveShop) -> tuple[str, str, str]:
    from pickup.runtime import Resources
    from pickup.staff.service import create_staff

    email, name, role = ACCOUNT
    async with Resources.open(live_shop.settings) as resources, resources.sessions.begin() as db:
        if await db.scalar(select(StaffUser).where(StaffUser.email == email)) is None:
            await create_staff(db, email=email, display_name=name, password=PASSWORD, role=role)
    return ACCOUNT


@pytest.fixture
async def board_context(
    browser: Any, cuttable_shop: CuttableShop, staff_account: tuple[str, str, str]
) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=cuttable_shop.url, viewport=DESKTOP, color_scheme="light"
    )
    context.set_default_timeout(10_000)
    signed_in = await context.request.post(
        "/api/staff/login", data={"email": staff_account[0], "password": PASSWORD}
    )
    assert signed_in.ok, await signed_in.text()
    yield context
    await context.close()


async def move_on(context: Any, order_id: str, status: str) -> None:
    """A status change made elsewhere (another till), with the version it was read at."""
    detail = await context.request.get(f"/api/admin/orders/{order_id}")
    assert detail.ok, await detail.text()
    csrf = next(c["value"] for c in await context.cookies() if c["name"] == "pickup_csrf")
    changed = await context.request.put(
        f"/api/admin/orders/{order_id}/status",
        data={"status": status},
        headers={"If-Match": detail.headers["etag"], "X-CSRF-Token": csrf},
    )
    assert changed.ok, await changed.text()


async def test_the_board_says_when_live_updates_are_lost_and_catches_up_when_they_return(
    board_context: Any, cuttable_shop: CuttableShop
) -> None:
    # On the board from the start (loaded, not announced), so it has no event to resume from.
    order = await place_order(cuttable_shop.url)
    board = await board_context.new_page()
    errors: list[str] = []
    board.on("pageerror", lambda error: errors.append(str(error)))
    await goto(board, "/admin")
    live = board.locator("[data-board-live]")
    banner = board.locator("[data-live-banner]")
    card = board.locator(f'[data-order-card][data-order-id="{order["order_id"]}"]')
    await expect(live).to_have_attribute("data-state", "live")
    await expect(board.locator('[data-column="pending"]').locator(card)).to_be_visible()
    await expect(banner).to_be_hidden()

    # The stream ends and every reconnection fails: the banner says so, as a status.
    refused: list[str] = []

    async def refuse(route: Any) -> None:
        refused.append(route.request.url)
        await route.abort("connectionrefused")

    await board.route(f"**{EVENTS_PATH}", refuse)
    assert cuttable_shop.cutter.cut() >= 1, "the board had no live stream open"
    status = board.get_by_role("status").filter(has_text=BANNER_TEXT)
    await expect(status).to_be_visible()
    await expect(banner).to_have_text(BANNER_TEXT)
    await expect(live).to_have_attribute("data-state", "reconnecting")
    await expect(live).to_contain_text("Reconnecting")

    # A change made while disconnected does not reach the board ...
    await move_on(board_context, order["order_id"], "confirmed")
    deadline = time.monotonic() + 15
    while not refused:  # the browser has tried again, and was refused
        assert time.monotonic() < deadline, "the board did not try to reconnect within 15 s"
        await asyncio.sleep(0.1)
    await board.wait_for_timeout(1_000)
    await expect(board.locator('[data-column="pending"]').locator(card)).to_be_visible()
    await expect(status).to_be_visible()

    # ... until the stream is let through: the banner goes and the board catches up.
    await board.unroute(f"**{EVENTS_PATH}", refuse)
    await expect(banner).to_be_hidden(timeout=40_000)
    await expect(live).to_have_attribute("data-state", "live")
    await expect(board.locator('[data-column="confirmed"]').locator(card)).to_be_visible()

    # Later changes arrive live again.
    await move_on(board_context, order["order_id"], "preparing")
    await expect(board.locator('[data-column="preparing"]').locator(card)).to_be_visible()
    await expect(banner).to_be_hidden()
    assert errors == []
