"""The notification log records a send before it is made.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

A notification is claimed with a ``sending`` row (committed before the provider is called),
whose outcome is then written onto the same row: ``sent``, ``failed`` or ``ambiguous`` (the
provider may or may not have accepted it). ``updated_at`` says when the row last changed, so a
``sending`` row older than the send lease is known to belong to a sender that died
(docs/reliability.md). At most one ``sending`` row per dedupe key, and an index serving the
lookups by key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "status IN ('sending', 'sent', 'failed', 'ambiguous', 'skipped')"
OLD_STATUSES = "status IN ('sent', 'failed', 'skipped')"


def _notification_log(statuses: str, *, updated_at: bool) -> sa.Table:
    """The table as it stands before the change: SQLite's batch mode rebuilds it from this
    rather than from reflection, so that ``alembic upgrade --sql`` works offline too."""
    metadata = sa.MetaData()
    sa.Table("orders", metadata, sa.Column("id", sa.Uuid(), primary_key=True))
    now = sa.text("CURRENT_TIMESTAMP")
    table = sa.Table(
        "notification_log",
        metadata,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_message_id", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        *(
            [
                sa.Column(
                    "updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False
                )
            ]
            if updated_at
            else []
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notification_log"),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name="fk_notification_log_order_id_orders",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("channel IN ('email', 'sms')", name="ck_notification_log_channel"),
        sa.CheckConstraint(statuses, name="ck_notification_log_status"),
        sa.CheckConstraint("attempt >= 1", name="ck_notification_log_attempt_positive"),
    )
    sa.Index("ix_notification_log_order_id", table.c.order_id)
    sa.Index(
        "uq_notification_log_dedupe_key_sent",
        table.c.dedupe_key,
        unique=True,
        postgresql_where=sa.text("status = 'sent'"),
        sqlite_where=sa.text("status = 'sent'"),
    )
    return table


def upgrade() -> None:
    before = _notification_log(OLD_STATUSES, updated_at=False)
    with op.batch_alter_table("notification_log", copy_from=before) as batch:
        batch.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=False,
            )
        )
        batch.drop_constraint(op.f("ck_notification_log_status"), type_="check")
        batch.create_check_constraint(op.f("ck_notification_log_status"), sa.text(STATUSES))
    op.create_index("ix_notification_log_dedupe_key", "notification_log", ["dedupe_key"])
    op.create_index(
        "uq_notification_log_dedupe_key_sending",
        "notification_log",
        ["dedupe_key"],
        unique=True,
        postgresql_where=sa.text("status = 'sending'"),
        sqlite_where=sa.text("status = 'sending'"),
    )


def downgrade() -> None:
    op.drop_index("uq_notification_log_dedupe_key_sending", table_name="notification_log")
    op.drop_index("ix_notification_log_dedupe_key", table_name="notification_log")
    # A claim or an unknown outcome has no place in the old schema: it was an attempt that
    # did not (knowingly) succeed.
    op.execute(
        "UPDATE notification_log SET status = 'failed' WHERE status IN ('sending', 'ambiguous')"
    )
    before = _notification_log(STATUSES, updated_at=True)
    with op.batch_alter_table("notification_log", copy_from=before) as batch:
        batch.drop_constraint(op.f("ck_notification_log_status"), type_="check")
        batch.create_check_constraint(op.f("ck_notification_log_status"), sa.text(OLD_STATUSES))
        batch.drop_column("updated_at")
