"""The PostgreSQL tables, as SQLAlchemy 2 typed declarative models.

The same models run on SQLite in embedded development, which shapes a few choices:
- every constraint is named (``NAMING_CONVENTION``) so Alembic's batch mode can rebuild
  tables and drop constraints by name;
- aware datetimes go through :class:`UTCDateTime`, which stores UTC and always hands back an
  aware UTC value (SQLite keeps no offset);
- server defaults are ``CURRENT_TIMESTAMP`` (SQLite rejects ``now()``);
- enumerations are strings guarded by check constraints rather than native enum types.

``migrations/versions`` must agree with these models; ``tests/integration/test_migrations.py``
checks that they do.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from sqlalchemy.sql.elements import TextClause

from pickup.core.orders import Actor, OrderStatus, ReservationState

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Allowed values of the plain string columns, shared with their check constraints.
STAFF_ROLES = ("staff", "admin")
NOTIFICATION_CHANNELS = ("email", "sms")
# "sending": claimed before the provider is called; "ambiguous": the provider may or may not
# have accepted it (see pickup.notifier.channels).
NOTIFICATION_STATUSES = ("sending", "sent", "failed", "ambiguous", "skipped")
IDEMPOTENCY_STATES = ("in_progress", "completed")
OUTBOX_DESTINATION_KINDS = ("sqs", "sns")
LEDGER_KINDS = ("reserve", "confirm", "release", "restock", "adjust", "set")

SPECIAL_INSTRUCTIONS_MAX = 500
NOTE_MAX = 500


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC; naive values are refused, not guessed at."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"a timezone-aware datetime is required, got {value!r}")
        value = value.astimezone(UTC)
        # SQLite would store the offset as text and compare strings; naive UTC sorts correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


E = TypeVar("E", bound=enum.StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A ``StrEnum`` stored as its value in a ``VARCHAR``; the check constraint is separate."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int = 16) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_class(value)

    @property
    def python_type(self) -> type[E]:
        return self.enum_class


# BIGINT identities on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")
JSONDocument = JSON().with_variant(postgresql.JSONB(), "postgresql")


def one_of(column: str, values: Iterable[str]) -> str:
    """SQL for ``column IN (...)``; the values are ours (constants and enums), never input."""
    listed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({listed})"


def _now() -> TextClause:
    return text("CURRENT_TIMESTAMP")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONDocument,
    }


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now(), onupdate=func.now())


class Order(Timestamped, Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(one_of("status", OrderStatus), name="status"),
        CheckConstraint(one_of("reservation_state", ReservationState), name="reservation_state"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("subtotal_cents >= 0", name="subtotal_cents_non_negative"),
        CheckConstraint("total_cents >= 0", name="total_cents_non_negative"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        CheckConstraint(
            f"length(special_instructions) <= {SPECIAL_INSTRUCTIONS_MAX}",
            name="special_instructions_length",
        ),
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index("ix_orders_created_at_id", "created_at", "id"),
        Index("ix_orders_pickup_at", "pickup_at"),
        # Migration 0002 also adds PostgreSQL-only trigram indexes for the name/email search
        # (TRIGRAM_INDEXES there); they are not declared here because SQLite has no pg_trgm.
        Index(
            "ix_orders_reservation_state_expires_at", "reservation_state", "reservation_expires_at"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[OrderStatus] = mapped_column(
        StrEnumType(OrderStatus), default=OrderStatus.PENDING
    )
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # Every ORM flush of an order checks and bumps `version`, so a stale copy cannot
    # overwrite a newer status; Core UPDATEs must do the same by hand.
    __mapper_args__ = {"version_id_col": version, "eager_defaults": True}
    customer_name: Mapped[str] = mapped_column(String(100))
    customer_email: Mapped[str] = mapped_column(String(254))
    customer_phone: Mapped[str | None] = mapped_column(String(32))
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    special_instructions: Mapped[str | None] = mapped_column(String(SPECIAL_INSTRUCTIONS_MAX))
    pickup_at: Mapped[datetime]
    pickup_slot: Mapped[datetime | None]
    estimated_ready_at: Mapped[datetime | None]
    subtotal_cents: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    lookup_token_hash: Mapped[str] = mapped_column(String(128))
    reservation_state: Mapped[ReservationState] = mapped_column(
        StrEnumType(ReservationState), default=ReservationState.HELD
    )
    reservation_expires_at: Mapped[datetime | None]

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="OrderItem.id",
        lazy="selectin",
    )
    history: Mapped[list[OrderStatusHistory]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="OrderStatusHistory.id",
        lazy="raise",
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_cents_non_negative"),
        # With the two above, this also keeps the line total from going negative.
        CheckConstraint(
            "line_total_cents = unit_price_cents * quantity", name="line_total_cents_product"
        ),
        Index("ix_order_items_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    line_total_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="items", lazy="raise")


class OrderStatusHistory(Base):
    __tablename__ = "order_status_history"
    __table_args__ = (
        CheckConstraint(
            f"from_status IS NULL OR {one_of('from_status', OrderStatus)}", name="from_status"
        ),
        CheckConstraint(one_of("to_status", OrderStatus), name="to_status"),
        CheckConstraint(one_of("actor_type", Actor), name="actor_type"),
        Index("ix_order_status_history_order_id_created_at", "order_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    from_status: Mapped[OrderStatus | None] = mapped_column(StrEnumType(OrderStatus))
    to_status: Mapped[OrderStatus] = mapped_column(StrEnumType(OrderStatus))
    actor_type: Mapped[Actor] = mapped_column(StrEnumType(Actor))
    staff_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    note: Mapped[str | None] = mapped_column(String(NOTE_MAX))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())

    order: Mapped[Order] = relationship(back_populates="history", lazy="raise")


class StaffUser(Timestamped, Base):
    __tablename__ = "staff_users"
    __table_args__ = (
        # Emails compare case-insensitively because they are only ever stored lower-cased.
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        CheckConstraint(one_of("role", STAFF_ROLES), name="role"),
        CheckConstraint("failed_login_count >= 0", name="failed_login_count_non_negative"),
    )
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), server_default=text("'staff'"), default="staff")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=true(), default=True)
    failed_login_count: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]

    @validates("email")
    def _lower_case_email(self, _key: str, email: str) -> str:
        return email.strip().lower()


class NotificationLog(Base):
    __tablename__ = "notification_log"
    __table_args__ = (
        CheckConstraint(one_of("channel", NOTIFICATION_CHANNELS), name="channel"),
        CheckConstraint(one_of("status", NOTIFICATION_STATUSES), name="status"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        Index("ix_notification_log_order_id", "order_id"),
        Index("ix_notification_log_dedupe_key", "dedupe_key"),
        # Failed attempts may share a key; only one send of a notification may succeed, and
        # only one may be in progress.
        Index(
            "uq_notification_log_dedupe_key_sent",
            "dedupe_key",
            unique=True,
            postgresql_where=text("status = 'sent'"),
            sqlite_where=text("status = 'sent'"),
        ),
        Index(
            "uq_notification_log_dedupe_key_sending",
            "dedupe_key",
            unique=True,
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(8))
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    # Unbounded so that a long provider error can never stop the failure being recorded.
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("1"), default=1)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    # When the row last changed: for a "sending" row, when the send was claimed.
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint(one_of("state", IDEMPOTENCY_STATES), name="state"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(
        String(16), server_default=text("'in_progress'"), default="in_progress"
    )
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None]
    order_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    expires_at: Mapped[datetime]


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(
            one_of("destination_kind", OUTBOX_DESTINATION_KINDS), name="destination_kind"
        ),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # The relay reads only unsent rows, which stay few however long the table grows.
        Index(
            "ix_outbox_unsent",
            "next_attempt_at",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    destination_kind: Mapped[str] = mapped_column(String(8))
    destination: Mapped[str] = mapped_column(String(256))
    message_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    attributes: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'"), default=dict)
    deduplication_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=_now())


class InventoryLedgerEntry(Base):
    """One movement of stock. Rows come from the API and from the DynamoDB stream, whose
    records may arrive before the order row commits (or for an order that never does), so
    ``order_id`` is deliberately not a foreign key."""

    __tablename__ = "inventory_ledger"
    __table_args__ = (
        CheckConstraint(one_of("kind", LEDGER_KINDS), name="kind"),
        CheckConstraint("on_hand_after >= 0", name="on_hand_after_non_negative"),
        CheckConstraint("reserved_after >= 0", name="reserved_after_non_negative"),
        CheckConstraint("available_after >= 0", name="available_after_non_negative"),
        Index("ix_inventory_ledger_product_id_created_at", "product_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    delta_on_hand: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    delta_reserved: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    delta_available: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    reserved_after: Mapped[int] = mapped_column(Integer)
    available_after: Mapped[int | None] = mapped_column(Integer)
    order_id: Mapped[uuid.UUID | None]
    staff_user_id: Mapped[uuid.UUID | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    # The stream record's sequence number: a replayed record is written once.
    source_event_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=_now())


class PickupSlot(Base):
    """A per-slot counter. Book with ``UPDATE ... SET booked = booked + 1 WHERE booked <
    capacity`` and check the row count; never read, add and write back."""

    __tablename__ = "pickup_slots"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
    )

    slot_start: Mapped[datetime] = mapped_column(primary_key=True)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)


class StreamCheckpoint(Base):
    __tablename__ = "stream_checkpoints"

    shard_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    stream_arn: Mapped[str] = mapped_column(String(512))
    sequence_number: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(server_default=_now(), onupdate=func.now())


class ReservationIntent(Base):
    """A checkout about to reserve stock: written before the DynamoDB reservation, deleted in
    the transaction that saves the order. One left behind after a grace period belongs to a
    checkout that died in between; the sweeper releases its stock (if it was ever held) and
    deletes it, and a checkout that outlives its grace finds its intent gone and gives up."""

    __tablename__ = "reservation_intents"
    __table_args__ = (Index("ix_reservation_intents_created_at", "created_at"),)

    order_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # [{"product_id": ..., "quantity": ...}, ...]: what the reservation holds.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime]
