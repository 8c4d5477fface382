"""The staff order list's filters and sorts are served by indexes (PostgreSQL plans).

With sequential scans discouraged, the planner shows which index each query can use: a
query no index serves still falls back to a sequential scan, and these tests fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, select, text
from sqlalchemy.dialects import postgresql

from pickup.adapters.orm import Order
from pickup.admin.repository import SORT_COLUMNS, OrderFilter, _filtered
from pickup.core.orders import OrderStatus


async def plan(db_engine: Any, query: Select[Any]) -> str:
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    async with db_engine.begin() as connection:
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        rows = await connection.execute(text(f"EXPLAIN {sql}"))
        return "\n".join(row[0] for row in rows)


CONFIRMED = OrderFilter(statuses=[OrderStatus.CONFIRMED])


def page(where: OrderFilter, sort: str) -> Select[Any]:
    column = SORT_COLUMNS[sort]
    return _filtered(select(Order), where).order_by(column.desc(), Order.id.desc()).limit(50)


@pytest.mark.parametrize(
    ("where", "sort", "index"),
    [
        (OrderFilter(), "created_at", "ix_orders_created_at_id"),
        (
            OrderFilter(statuses=[OrderStatus.CONFIRMED]),
            "created_at",
            "ix_orders_status_created_at",
        ),
        (OrderFilter(), "pickup_at", "ix_orders_pickup_at"),
        (OrderFilter(code="K7M2QX"), "created_at", "uq_orders_code"),
        (OrderFilter(text="grace"), "created_at", "ix_orders_customer_name_trgm"),
        (OrderFilter(text="grace"), "created_at", "ix_orders_customer_email_trgm"),
    ],
)
async def test_each_filter_and_sort_is_served_by_an_index(
    db_engine: Any, where: OrderFilter, sort: str, index: str
) -> None:
    explained = await plan(db_engine, page(where, sort))
    assert index in explained, explained
    assert "Seq Scan" not in explained, explained
