"""The API process's composition root: ``create_app`` builds the FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import pickup
from pickup.admin import endpoints as admin
from pickup.admin import events
from pickup.admin.live_hub import LiveHub
from pickup.api import health
from pickup.api.limits import BodySizeLimit
from pickup.api.metrics import PrometheusMiddleware
from pickup.api.problems import install_problem_handlers
from pickup.api.security import SecuredFastAPI
from pickup.api.serving import tune_gc_for_serving
from pickup.cart import endpoints as cart
from pickup.menu import endpoints as menu
from pickup.observability import cloudwatch
from pickup.observability.samplers import API_SAMPLES, run_samplers
from pickup.observability.tracing import (
    configure_tracing,
    instrument_app,
    instrument_engine,
    quiet,
)
from pickup.orders import endpoints as orders
from pickup.outbox.relay import OutboxRelay
from pickup.pages import endpoints as pages
from pickup.pages import staff as staff_pages
from pickup.paths import shipped
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.staff import endpoints as staff

# Something to run for the whole life of the app beside the API (the embedded development
# stack runs the AWS emulator, worker and notifier this way). Entered before the clients open.
Companion = Callable[[], AbstractAsyncContextManager[object]]


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(
    settings: Settings, *, companions: tuple[Companion, ...] = (), tune_gc: bool = False
) -> FastAPI:
    """The API application. ``tune_gc``: :func:`tune_gc_for_serving` once start-up is done,
    as ``pickup api`` does; off by default, since it is for a process and not for one app of
    many (the tests build hundreds in one process)."""
    configure_tracing(settings, "pickup-api")  # off (a no-op) unless enabled

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # All start-up and clean-up lives here: uvicorn re-raises SIGINT after serving, so
        # clean-up placed after `serve()` would never run on Ctrl-C.
        async with AsyncExitStack() as stack:
            for companion in companions:
                await stack.enter_async_context(companion())
            resources = await stack.enter_async_context(Resources.open(settings))
            instrument_engine(resources.engine)
            app.state.resources = resources
            # The loops started here start no traces of their own while idle (requests are
            # traced by the middleware, messages the relay sends by their own spans).
            with quiet():
                relay = asyncio.create_task(
                    OutboxRelay(resources).run(settings.outbox_relay_interval_seconds),
                    name="outbox-relay",
                )
                stack.push_async_callback(_cancel, relay)
                hub = LiveHub(resources.redis)
                hub.start()
                app.state.live_hub = hub
                stack.push_async_callback(hub.close)
                await stack.enter_async_context(
                    cloudwatch.publishing(resources.aws, settings, "api")
                )
                samplers = asyncio.create_task(
                    run_samplers(resources, API_SAMPLES), name="metrics-samplers"
                )
                stack.push_async_callback(_cancel, samplers)
            if tune_gc:
                tune_gc_for_serving()
            yield

    # SecuredFastAPI: security headers on every answer, a 500 included (api/security.py).
    app = SecuredFastAPI(
        title="pickup",
        version=pickup.__version__,
        summary="Order ahead, pick up on time.",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    install_problem_handlers(app)
    # The router tries routes and routers in this order, and each one it passes over costs a
    # match per route: the customer's hot paths come first, the cart add on the app itself.
    cart.include_add(app)
    app.include_router(menu.router)
    app.include_router(cart.router)
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(events.customer_router)
    app.include_router(staff.router)
    for router in admin.ROUTERS:
        app.include_router(router)
    app.include_router(events.staff_router)
    app.include_router(pages.router)
    app.include_router(staff_pages.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Outermost: it times everything the app does, and sees the route the router chose.
    app.add_middleware(PrometheusMiddleware)
    app.mount("/static", StaticFiles(directory=shipped("web") / "static"), name="static")
    instrument_app(app)
    return app
