"""``pipeline``: orders per second from the 202 to ``CONFIRMED`` through ``pickup worker``,
and the p50/p95/p99 of that delay (the order's ``created_at`` to its ``confirmed`` history
row). Orders are placed through the API by the checkout client for a while, then the bench
waits until every accepted order is confirmed.

Baseline: the rate at which the same run's checkouts were accepted. The ratio says whether
the worker keeps up with checkout (1.0: it confirms as fast as orders arrive); an order not
confirmed by the end counts as lost.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from bench.context import Context
from bench.pipeline_support import start_pipeline, worker_available
from bench.results import ScenarioResult, percentile
from bench.scenarios.checkout import CheckoutClient
from bench.stock import plentiful_products, set_stock

NEEDS = ("api",)
GOAL = 0.9


def skip_reason(ctx: Context) -> str | None:
    if not worker_available():
        return "`pickup worker` does not exist in this tree yet (issue 4)"
    return None


async def _confirmations(url: str, ids: list[str]) -> dict[str, tuple[datetime, datetime]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT o.id::text AS id, o.created_at AS placed, min(h.created_at) AS confirmed "
            "FROM orders o JOIN order_status_history h ON h.order_id = o.id "
            "WHERE h.to_status = 'confirmed' AND o.id::text = ANY($1::text[]) "
            "GROUP BY o.id, o.created_at",
            ids,
        )
    finally:
        await conn.close()
    return {row["id"]: (row["placed"], row["confirmed"]) for row in rows}


def run(ctx: Context) -> ScenarioResult:
    env = ctx.env
    running = start_pipeline(ctx)
    products = plentiful_products(env, 8)
    set_stock(env, dict.fromkeys(products, 1_000_000))
    seconds = ctx.seconds(15, 3)
    ctx.reset_rate_limits()

    async def place() -> tuple[CheckoutClient, float]:
        client = CheckoutClient(ctx.api.url, products, ctx.concurrency)
        try:
            outcome = await client.run(ctx.concurrency, seconds)
        finally:
            await client.client.aclose()
        return client, outcome.seconds

    client, placing = asyncio.run(place())
    ids = sorted(client.accepted)
    deadline = time.monotonic() + (20 if ctx.quick else 90)
    confirmed: dict[str, tuple[datetime, datetime]] = {}
    while time.monotonic() < deadline:
        confirmed = asyncio.run(_confirmations(env.database_url, ids))
        if len(confirmed) == len(ids):
            break
        time.sleep(0.5)
    delays = [(done - placed).total_seconds() for placed, done in confirmed.values()]
    if confirmed:
        first = min(placed for placed, _ in confirmed.values())
        last = max(done for _, done in confirmed.values())
        span = max((last - first).total_seconds(), 1e-6)
        rate = len(confirmed) / span
    else:
        rate = 0.0
    accepted_rate = len(ids) / placing if placing else 0.0
    lost = len(ids) - len(confirmed)
    ratio = rate / accepted_rate if accepted_rate else None
    return ScenarioResult(
        name="pipeline",
        unit="orders/s",
        value=rate,
        p50_ms=percentile(delays, 50),
        p95_ms=percentile(delays, 95),
        p99_ms=percentile(delays, 99),
        errors=sum(n for code, n in client.statuses.items() if code != 202),
        baseline=accepted_rate,
        baseline_what="checkouts accepted per second in the same run (worker keeping up = 1.0)",
        ratio=ratio,
        goal=f"ratio >= {GOAL}, every order confirmed",
        passed=ratio is not None and ratio >= GOAL and lost == 0 and bool(ids),
        details={
            "accepted": len(ids),
            "confirmed": len(confirmed),
            "lost": lost,
            "latency_is": "202 to CONFIRMED (order created_at to its confirmed history row)",
            "processes": running,
            "concurrency": ctx.concurrency,
        },
    )
