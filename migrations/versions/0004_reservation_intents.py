"""Reservation intents: a checkout's stock reservation, recorded before it is made.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-25

A checkout writes its intent (order id and lines) before reserving stock in DynamoDB and
deletes it in the transaction that saves the order; the worker's sweeper releases the stock of
intents left behind by a checkout that died in between (see docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reservation_intents",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column(
            "lines", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_reservation_intents")),
    )
    op.create_index("ix_reservation_intents_created_at", "reservation_intents", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_reservation_intents_created_at", table_name="reservation_intents")
    op.drop_table("reservation_intents")
