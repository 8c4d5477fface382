"""``cart_add``: POST /api/cart/add (validation, cart token, rate limit, stock check, Lua
write) against a bare endpoint that parses the same body and does one Redis HINCRBY."""

from __future__ import annotations

import httpx

from bench.context import Context
from bench.results import Figures, ScenarioResult
from bench.stock import plentiful_products
from bench.wrk import WrkLoad, run_wrk

NEEDS = ("api", "baseline")
GOAL = 0.7


def skip_reason(ctx: Context) -> str | None:
    return None


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
    app, bare = [], []
    for _ in range(ctx.rounds):
        bare.append(run_wrk(ctx.baseline.url + "/bare/cart", "cart_add", load, env))
        ctx.reset_rate_limits()
        warm_menu(ctx)
        app.append(run_wrk(ctx.api.url + "/api/cart/add", "cart_add", load, env))
    return ScenarioResult.versus(
        "cart_add",
        "requests/s",
        Figures.combine(app),
        Figures.combine(bare),
        "POST /bare/cart: the same body, one Redis HINCRBY",
        GOAL,
        products=len(products),
        lines_per_cart=5,
        connections=load.connections,
        rounds=ctx.rounds,
    )
