"""Indexes for the staff order list: newest-first paging, and name/email search.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

``(created_at, id)`` serves keyset pages sorted by creation time without a status filter.
On PostgreSQL, trigram GIN indexes on ``lower(customer_name)`` and ``lower(customer_email)``
serve the board's substring search (``lower(x) LIKE '%term%'``). They are PostgreSQL-only
(pg_trgm) and live here rather than in the models; SQLite (development) searches by scan.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAM_INDEXES = {
    "ix_orders_customer_name_trgm": "customer_name",
    "ix_orders_customer_email_trgm": "customer_email",
}


def upgrade() -> None:
    op.create_index("ix_orders_created_at_id", "orders", ["created_at", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, column in TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON orders USING gin (lower({column}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_orders_created_at_id", table_name="orders")
