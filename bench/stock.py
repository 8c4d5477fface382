"""Stock set-up and the stock side of reconciliation (DynamoDB through the app's adapter)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from bench.env import BenchEnv


def plentiful_products(env: BenchEnv, count: int) -> list[str]:
    """The ``count`` best-stocked products of the sample menu (stable order)."""
    from pickup.seed.menu import sample_products

    products = sorted(
        (p for p in sample_products("GBP") if p["is_available"]),
        key=lambda p: (-p["on_hand"], p["id"]),
    )
    return [p["id"] for p in products[:count]]


@dataclass(frozen=True)
class Level:
    on_hand: int
    reserved: int
    available: int


async def _levels(env: BenchEnv, ids: list[str]) -> dict[str, Level]:
    from pickup.adapters.aws import AWSClients
    from pickup.adapters.dynamodb import InventoryStore

    settings = env.settings()
    async with AWSClients(settings) as aws:
        store = InventoryStore(aws, settings.names.products_table)
        found = await store.get_products(ids, consistent_read=True)
    return {pid: Level(p.on_hand, p.reserved, p.available) for pid, p in found.items()}


async def _set_stock(env: BenchEnv, stock: Mapping[str, int]) -> None:
    from redis.asyncio import Redis

    from pickup.adapters.aws import AWSClients
    from pickup.adapters.dynamodb import InventoryStore
    from pickup.menu.cache import invalidate_menu

    settings = env.settings()
    async with AWSClients(settings) as aws:
        store = InventoryStore(aws, settings.names.products_table)
        found = await store.get_products(list(stock), consistent_read=True)
        for pid, quantity in stock.items():
            product = found[pid].model_copy(
                update={
                    "on_hand": quantity,
                    "reserved": 0,
                    "available": quantity,
                    "is_available": True,
                    "max_per_order": max(found[pid].max_per_order, 10),
                }
            )
            await store.put_product(product, replace_inventory=True)
    redis = Redis.from_url(env.redis_url)
    try:
        await invalidate_menu(redis)
    finally:
        await redis.aclose()


def levels(env: BenchEnv, ids: list[str]) -> dict[str, Level]:
    return asyncio.run(_levels(env, ids))


def set_stock(env: BenchEnv, stock: Mapping[str, int]) -> None:
    """Put exactly ``stock`` units on sale (nothing reserved) and drop the menu cache."""
    asyncio.run(_set_stock(env, stock))


def oversold(
    before: Mapping[str, Level], after: Mapping[str, Level], sold: Mapping[str, int]
) -> tuple[int, dict[str, dict[str, int]]]:
    """Units sold beyond stock, and per product what the check saw.

    ``sold``: units in accepted (202) orders since ``before`` (every reservation of the
    period, whoever made it). Oversold counts units accepted beyond what was available, and
    any unit DynamoDB shows below zero; ``drift`` (reserved moved by a different amount than
    was sold, or on_hand != available + reserved) is reported beside it.
    """
    total = 0
    report: dict[str, dict[str, int]] = {}
    for pid, start in before.items():
        end = after[pid]
        units = sold.get(pid, 0)
        beyond = max(0, units - start.available) + max(0, -end.available)
        drift = (end.reserved - start.reserved) - units
        broken = end.on_hand - (end.available + end.reserved)
        total += beyond
        report[pid] = {
            "available_before": start.available,
            "sold": units,
            "available_after": end.available,
            "oversold": beyond,
            "reserved_drift": drift,
            "invariant_gap": broken,
        }
    return total, report
