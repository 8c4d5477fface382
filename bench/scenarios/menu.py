"""``menu``: GET /api/menu (cached bytes + ETag) against the bare app serving the same bytes
from Redis in one HGET. Both driven by wrk with the same connections."""

from __future__ import annotations

import httpx

from bench.baseline import MENU_KEY
from bench.context import Context, cpu_details
from bench.results import ScenarioResult
from bench.wrk import WrkLoad, run_wrk

NEEDS = ("api", "baseline")
GOAL = 0.8


def skip_reason(ctx: Context) -> str | None:
    return None


def prime(ctx: Context) -> int:
    """Warm the API's menu cache and copy its bytes where the baseline reads them."""
    body = httpx.get(ctx.api.url + "/api/menu", timeout=30).content
    with ctx.redis() as redis:
        cached = redis.hget("menu:v1", "body") or body
        redis.hset(MENU_KEY, "body", cached)
    bare = httpx.get(ctx.baseline.url + "/bare/menu", timeout=30).content
    if bare != body:
        raise RuntimeError("the baseline does not serve the API's menu bytes")
    return len(body)


def run(ctx: Context) -> ScenarioResult:
    size = prime(ctx)
    load = WrkLoad(threads=1, connections=ctx.concurrency * 2, seconds=ctx.seconds(12))
    warm = WrkLoad(threads=1, connections=load.connections, seconds=1)
    if not ctx.quick:
        run_wrk(ctx.api.url + "/api/menu", "get", warm)
    if not ctx.quick:
        run_wrk(ctx.baseline.url + "/bare/menu", "get", warm)
    app, bare = ctx.alternate(
        lambda: run_wrk(ctx.api.url + "/api/menu", "get", load),
        lambda: run_wrk(ctx.baseline.url + "/bare/menu", "get", load),
    )
    return ScenarioResult.versus(
        "menu",
        "requests/s",
        app.figures,
        bare.figures,
        "GET /bare/menu: the same bytes from one Redis HGET",
        GOAL,
        body_bytes=size,
        connections=load.connections,
        rounds=ctx.rounds,
        **cpu_details(app, bare),
    )
