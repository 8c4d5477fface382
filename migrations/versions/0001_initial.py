"""The initial schema: orders, their items and history, staff, notifications, idempotency
keys, the outbox, the inventory ledger, pickup slots and stream checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written by hand to run on PostgreSQL and SQLite alike, and kept self-contained (no imports
from the application, whose models will move on): every constraint is named as
``pickup.adapters.orm.NAMING_CONVENTION`` would name it, timestamps are
``TIMESTAMP WITH TIME ZONE`` holding UTC, and time defaults are ``CURRENT_TIMESTAMP``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORDER_STATUSES = "'pending', 'confirmed', 'preparing', 'ready', 'picked_up', 'cancelled', 'expired'"


def _id() -> sa.types.TypeEngine[int]:
    # BIGINT on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _now() -> sa.TextClause:
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("customer_name", sa.String(100), nullable=False),
        sa.Column("customer_email", sa.String(254), nullable=False),
        sa.Column("customer_phone", sa.String(32), nullable=True),
        sa.Column("sms_opt_in", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("special_instructions", sa.String(500), nullable=True),
        sa.Column("pickup_at", _timestamp(), nullable=False),
        sa.Column("pickup_slot", _timestamp(), nullable=True),
        sa.Column("estimated_ready_at", _timestamp(), nullable=True),
        sa.Column("subtotal_cents", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("lookup_token_hash", sa.String(128), nullable=False),
        sa.Column("reservation_state", sa.String(16), nullable=False),
        sa.Column("reservation_expires_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), server_default=_now(), nullable=False),
        sa.Column("updated_at", _timestamp(), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("code", name=op.f("uq_orders_code")),
        sa.CheckConstraint(f"status IN ({ORDER_STATUSES})", name=op.f("ck_orders_status")),
        sa.CheckConstraint(
            "reservation_state IN ('held', 'confirmed', 'released')",
            name=op.f("ck_orders_reservation_state"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_orders_version_positive")),
        sa.CheckConstraint(
            "subtotal_cents >= 0", name=op.f("ck_orders_subtotal_cents_non_negative")
        ),
        sa.CheckConstraint("total_cents >= 0", name=op.f("ck_orders_total_cents_non_negative")),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_orders_currency_code")),
        sa.CheckConstraint(
            "length(special_instructions) <= 500",
            name=op.f("ck_orders_special_instructions_length"),
        ),
    )
    op.create_index("ix_orders_status_created_at", "orders", ["status", "created_at"])
    op.create_index("ix_orders_pickup_at", "orders", ["pickup_at"])
    op.create_index(
        "ix_orders_reservation_state_expires_at",
        "orders",
        ["reservation_state", "reservation_expires_at"],
    )

    op.create_table(
        "staff_users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), server_default=sa.text("'staff'"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("failed_login_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", _timestamp(), nullable=True),
        sa.Column("last_login_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), server_default=_now(), nullable=False),
        sa.Column("updated_at", _timestamp(), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_users_email")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_staff_users_email_lower_case")),
        sa.CheckConstraint("role IN ('staff', 'admin')", name=op.f("ck_staff_users_role")),
        sa.CheckConstraint(
            "failed_login_count >= 0",
            name=op.f("ck_staff_users_failed_login_count_non_negative"),
        ),
    )

    op.create_table(
        "order_items",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("product_name", sa.String(200), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("line_total_cents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_items")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_items_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_items_quantity_positive")),
        sa.CheckConstraint(
            "unit_price_cents >= 0", name=op.f("ck_order_items_unit_price_cents_non_negative")
        ),
        sa.CheckConstraint(
            "line_total_cents = unit_price_cents * quantity",
            name=op.f("ck_order_items_line_total_cents_product"),
        ),
    )
    op.create_index("ix_order_items_order_id", "order_items", ["order_id"])

    op.create_table(
        "order_status_history",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("staff_user_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("created_at", _timestamp(), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_history")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_status_history_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_users.id"],
            name=op.f("fk_order_status_history_staff_user_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            f"from_status IS NULL OR from_status IN ({ORDER_STATUSES})",
            name=op.f("ck_order_status_history_from_status"),
        ),
        sa.CheckConstraint(
            f"to_status IN ({ORDER_STATUSES})", name=op.f("ck_order_status_history_to_status")
        ),
        sa.CheckConstraint(
            "actor_type IN ('customer', 'staff', 'system')",
            name=op.f("ck_order_status_history_actor_type"),
        ),
    )
    op.create_index(
        "ix_order_status_history_order_id_created_at",
        "order_status_history",
        ["order_id", "created_at"],
    )

    op.create_table(
        "notification_log",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_message_id", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("created_at", _timestamp(), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_log")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_notification_log_order_id_orders"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f("ck_notification_log_channel")),
        sa.CheckConstraint(
            "status IN ('sent', 'failed', 'skipped')", name=op.f("ck_notification_log_status")
        ),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_notification_log_attempt_positive")),
    )
    op.create_index("ix_notification_log_order_id", "notification_log", ["order_id"])
    op.create_index(
        "uq_notification_log_dedupe_key_sent",
        "notification_log",
        ["dedupe_key"],
        unique=True,
        postgresql_where=sa.text("status = 'sent'"),
        sqlite_where=sa.text("status = 'sent'"),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), server_default=sa.text("'in_progress'"), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", _json(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", _timestamp(), server_default=_now(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
        sa.CheckConstraint(
            "state IN ('in_progress', 'completed')", name=op.f("ck_idempotency_keys_state")
        ),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])

    op.create_table(
        "outbox",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("destination_kind", sa.String(8), nullable=False),
        sa.Column("destination", sa.String(256), nullable=False),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("attributes", _json(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("deduplication_id", sa.String(128), nullable=True),
        sa.Column("created_at", _timestamp(), server_default=_now(), nullable=False),
        sa.Column("sent_at", _timestamp(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", _timestamp(), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.CheckConstraint(
            "destination_kind IN ('sqs', 'sns')", name=op.f("ck_outbox_destination_kind")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_attempts_non_negative")),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )

    op.create_table(
        "inventory_ledger",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("delta_on_hand", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("delta_reserved", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("delta_available", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("on_hand_after", sa.Integer(), nullable=False),
        sa.Column("reserved_after", sa.Integer(), nullable=False),
        sa.Column("available_after", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("staff_user_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("source_event_id", sa.String(128), nullable=True),
        sa.Column("created_at", _timestamp(), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_ledger")),
        sa.UniqueConstraint("source_event_id", name=op.f("uq_inventory_ledger_source_event_id")),
        sa.CheckConstraint(
            "kind IN ('reserve', 'confirm', 'release', 'restock', 'adjust', 'set')",
            name=op.f("ck_inventory_ledger_kind"),
        ),
        sa.CheckConstraint(
            "on_hand_after >= 0", name=op.f("ck_inventory_ledger_on_hand_after_non_negative")
        ),
        sa.CheckConstraint(
            "reserved_after >= 0", name=op.f("ck_inventory_ledger_reserved_after_non_negative")
        ),
        sa.CheckConstraint(
            "available_after >= 0",
            name=op.f("ck_inventory_ledger_available_after_non_negative"),
        ),
    )
    op.create_index(
        "ix_inventory_ledger_product_id_created_at",
        "inventory_ledger",
        ["product_id", "created_at"],
    )

    op.create_table(
        "pickup_slots",
        sa.Column("slot_start", _timestamp(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("slot_start", name=op.f("pk_pickup_slots")),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_pickup_slots_capacity_non_negative")),
        sa.CheckConstraint(
            "booked >= 0 AND booked <= capacity",
            name=op.f("ck_pickup_slots_booked_within_capacity"),
        ),
    )

    op.create_table(
        "stream_checkpoints",
        sa.Column("shard_id", sa.String(128), nullable=False),
        sa.Column("stream_arn", sa.String(512), nullable=False),
        sa.Column("sequence_number", sa.String(64), nullable=False),
        sa.Column("updated_at", _timestamp(), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("shard_id", name=op.f("pk_stream_checkpoints")),
    )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes and constraints with it.
    for table in (
        "stream_checkpoints",
        "pickup_slots",
        "inventory_ledger",
        "outbox",
        "idempotency_keys",
        "notification_log",
        "order_status_history",
        "order_items",
        "staff_users",
        "orders",
    ):
        op.drop_table(table)
