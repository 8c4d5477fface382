"""``cart_add``: POST /api/cart/add (validation, cart token, rate limit, stock check, Lua
write) against a bare endpoint that parses the same body and does one Redis HINCRBY."""

from __future__ import annotations

import httpx

from bench.context import Context, cpu_details
from bench.results import Figures, ScenarioResult
from bench.stock import plentiful_products
from bench.wrk import WrkLoad, run_wrk

NEEDS = ("api", "baseline")
GOAL = 0.7
ADDS_PER_CART = 5  # as bench/wrk/cart_add.lua


def skip_reason(ctx: Context) -> str | None:
    return None


def count_carts(ctx: Context) -> int:
    """Carts in Redis now (each holds one key)."""
    with ctx.redis() as client:
        return sum(1 for _ in client.scan_iter("cart:*", count=1000))


def warm_menu(ctx: Context) -> None:
    """Shoppers browse before they add: the stock check reads the menu cache, which only a
    menu read rebuilds (a cart write on a cold cache reads DynamoDB instead)."""
    httpx.get(ctx.api.url + "/api/menu", timeout=30).raise_for_status()


def run(ctx: Context) -> ScenarioResult:
    products = plentiful_products(ctx.env, 8)
    env = {"BENCH_PRODUCTS": ",".join(products)}
    load = WrkLoad(threads=1, connections=ctx.concurrency * 2, seconds=ctx.seconds(12))
    warm = WrkLoad(threads=1, connections=load.connections, seconds=1)
    ctx.reset_rate_limits()
    warm_menu(ctx)
    if not ctx.quick:
        run_wrk(ctx.api.url + "/api/cart/add", "cart_add", warm, env)
    if not ctx.quick:
        run_wrk(ctx.baseline.url + "/bare/cart", "cart_add", warm, env)
    started = 0

    def measure_app() -> Figures:
        nonlocal started
        ctx.reset_rate_limits()
        warm_menu(ctx)
        carts_before = count_carts(ctx)
        figures = run_wrk(ctx.api.url + "/api/cart/add", "cart_add", load, env)
        started += count_carts(ctx) - carts_before
        return figures

    app, bare = ctx.alternate(
        measure_app, lambda: run_wrk(ctx.baseline.url + "/bare/cart", "cart_add", load, env)
    )
    adds = sum(figures.statuses.get(200, 0) for figures in app.rounds)
    return ScenarioResult.versus(
        "cart_add",
        "requests/s",
        app.figures,
        bare.figures,
        "POST /bare/cart: the same body, one Redis HINCRBY",
        GOAL,
        products=len(products),
        adds_per_cart=ADDS_PER_CART,
        # Measured: the API's successful adds per cart they started (the script's pooling
        # keeps it at ADDS_PER_CART whatever the connections' interleaving).
        measured_adds_per_cart=round(adds / started, 2) if started else None,
        connections=load.connections,
        rounds=ctx.rounds,
        **cpu_details(app, bare),
    )
