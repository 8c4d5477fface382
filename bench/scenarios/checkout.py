"""``checkout``: POST /api/orders (three lines, a fresh Idempotency-Key each) against the same
backend work done directly, without HTTP, at the same concurrency: one DynamoDB
TransactWriteItems reserving the three lines, one PostgreSQL transaction inserting the order
and its items, one SQS SendMessage.

Both sides are driven by the in-process closed-loop generator, in alternating rounds. Every
202 is reconciled afterwards: ``oversold`` (units accepted beyond stock) and ``lost`` (a 202
whose order is not in PostgreSQL, or whose message reached neither SQS nor the outbox) must
both be 0.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx

from bench.context import Context
from bench.env import BenchEnv
from bench.loadgen import Outcome, closed_loop
from bench.reconcile import reconcile
from bench.results import Figures, ScenarioResult
from bench.stock import levels, oversold, plentiful_products, set_stock

NEEDS = ("api",)
GOAL = 0.6
LINES = 3
STOCK = 1_000_000

CUSTOMER = {"name": "Bench Shopper", "email": "bench@example.com"}

INSERT_ORDER = """
INSERT INTO orders (id, code, status, customer_name, customer_email, sms_opt_in, pickup_at,
    pickup_slot, estimated_ready_at, subtotal_cents, total_cents, currency, lookup_token_hash,
    reservation_state, reservation_expires_at)
VALUES ($1, $2, 'pending', $3, $4, false, $5, $5, $5, $6, $6, 'GBP', $7, 'held', $8)
"""
INSERT_ITEM = """
INSERT INTO order_items (order_id, product_id, product_name, unit_price_cents, quantity,
    line_total_cents)
VALUES ($1, $2, $3, $4, $5, $6)
"""


def skip_reason(ctx: Context) -> str | None:
    return None


def pick_lines(rng: random.Random, products: list[str]) -> list[tuple[str, int]]:
    return [(pid, 1) for pid in rng.sample(products, LINES)]


# --- the API ---------------------------------------------------------------------------------


class CheckoutClient:
    """Places orders through the API and remembers every accepted one."""

    def __init__(self, base_url: str, products: list[str], concurrency: int) -> None:
        self.products = products
        self.rng = random.Random(1)  # noqa: S311 (load shape, not secrets)
        self.accepted: dict[str, list[tuple[str, int]]] = {}
        self.statuses: Counter[int] = Counter()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30)

    async def place(self, _index: int) -> str | None:
        lines = pick_lines(self.rng, self.products)
        response = await self.client.post(
            "/api/orders",
            json={
                "customer": CUSTOMER,
                "items": [{"product_id": pid, "quantity": q} for pid, q in lines],
            },
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        self.statuses[response.status_code] += 1
        if response.status_code != 202:
            return f"http {response.status_code}"
        self.accepted[response.json()["order_id"]] = lines
        return None

    async def run(self, concurrency: int, seconds: float) -> Outcome:
        return await closed_loop(self.place, concurrency, seconds)


# --- the baseline: the same backend calls, directly -----------------------------------------


async def baseline_round(
    env: BenchEnv, products: list[str], concurrency: int, seconds: float
) -> tuple[Outcome, Counter[str]]:
    import asyncpg

    from pickup.adapters.aws import AWSClients
    from pickup.adapters.dynamodb import InventoryStore
    from pickup.core.inventory import StockLine

    settings = env.settings()
    rng = random.Random(2)  # noqa: S311
    reserved: Counter[str] = Counter()
    size = settings.db_pool_size + settings.db_max_overflow  # the API's pool bound
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=size)
    try:
        async with AWSClients(settings) as aws:
            store = InventoryStore(aws, settings.names.products_table)
            catalogue = await store.get_products(products)
            sqs = await aws.client("sqs")
            queue = f"{settings.resource_prefix}-bench-baseline"
            url = (await sqs.create_queue(QueueName=queue))["QueueUrl"]

            async def one(_index: int) -> str | None:
                lines = pick_lines(rng, products)
                order_id = uuid.uuid4()
                await store.reserve(
                    [StockLine.of(pid, q) for pid, q in lines], order_id=str(order_id)
                )
                now = datetime.now(UTC)
                subtotal = sum(catalogue[pid].price_cents * q for pid, q in lines)
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(
                        INSERT_ORDER,
                        order_id,
                        secrets.token_hex(4).upper()[:8],
                        CUSTOMER["name"],
                        CUSTOMER["email"],
                        now + timedelta(minutes=15),
                        subtotal,
                        secrets.token_hex(32),
                        now + timedelta(minutes=15),
                    )
                    await conn.executemany(
                        INSERT_ITEM,
                        [
                            (
                                order_id,
                                pid,
                                catalogue[pid].name,
                                catalogue[pid].price_cents,
                                q,
                                catalogue[pid].price_cents * q,
                            )
                            for pid, q in lines
                        ],
                    )
                await sqs.send_message(
                    QueueUrl=url,
                    MessageBody=json.dumps(
                        {"type": "order.placed", "order_id": str(order_id), "lines": lines}
                    ),
                    MessageAttributes={
                        "event_type": {"DataType": "String", "StringValue": "order.placed"}
                    },
                )
                reserved.update({pid: q for pid, q in lines})
                return None

            outcome = await closed_loop(one, concurrency, seconds)
    finally:
        await pool.close()
    return outcome, reserved


# --- the scenario ----------------------------------------------------------------------------


def run(ctx: Context) -> ScenarioResult:
    env = ctx.env
    products = plentiful_products(env, 8)
    set_stock(env, dict.fromkeys(products, STOCK))
    before = levels(env, products)
    concurrency = ctx.concurrency
    seconds = ctx.seconds(15)
    ctx.reset_rate_limits()

    async def drive() -> tuple[list[Outcome], list[Outcome], CheckoutClient, Counter[str]]:
        client = CheckoutClient(ctx.api.url, products, concurrency)
        baseline_reserved: Counter[str] = Counter()
        app, bare = [], []
        try:
            if not ctx.quick:  # warm-ups (reconciled like the rest)
                await client.run(concurrency, 1.0)
                _, reserved = await baseline_round(env, products, concurrency, 1.0)
                baseline_reserved.update(reserved)
            for _ in range(ctx.rounds):
                outcome, reserved = await baseline_round(env, products, concurrency, seconds)
                bare.append(outcome)
                baseline_reserved.update(reserved)
                app.append(await client.run(concurrency, seconds))
        finally:
            await client.client.aclose()
        return app, bare, client, baseline_reserved

    app, bare, client, baseline_reserved = asyncio.run(drive())
    after = levels(env, products)
    # Every reservation since `before`: the API's accepted orders and the baseline's.
    sold: Counter[str] = Counter()
    for lines in client.accepted.values():
        sold.update({pid: q for pid, q in lines})
    check = reconcile(env, client.accepted, check_sqs="worker" not in env.processes)
    units_over, per_product = oversold(before, after, sold + baseline_reserved)
    measured = Figures.combine([outcome.figures() for outcome in app])
    baseline = Figures.combine([outcome.figures() for outcome in bare])
    result = ScenarioResult.versus(
        "checkout",
        "orders/s",
        measured,
        baseline,
        "TransactWriteItems + one PostgreSQL insert transaction + SendMessage, in a loop",
        GOAL,
        concurrency=concurrency,
        lines_per_order=LINES,
        rounds=ctx.rounds,
        oversold=units_over,
        **check.as_details(),
        statuses={str(code): n for code, n in sorted(client.statuses.items())},
        failures=dict(sum((outcome.failures for outcome in app), Counter())),
        baseline_failures=dict(sum((outcome.failures for outcome in bare), Counter())),
        stock=per_product,
    )
    result.goal = f"ratio >= {GOAL}, oversold 0, lost 0"
    result.passed = bool(result.passed) and units_over == 0 and check.lost == 0
    return result
