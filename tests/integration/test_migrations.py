"""The Alembic migrations: up, down and up again on PostgreSQL, the same on SQLite (the
embedded development database), and in agreement with the models."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from pickup.adapters.database import (
    create_engine,
    create_oneoff_engine,
    create_sessionmaker,
    downgrade,
    migrate,
)
from pickup.adapters.orm import Base, Order, OrderItem
from pickup.core.orders import OrderStatus, new_order_code
from pickup.settings import Settings
from tests.services import Services

ROOT = Path(__file__).resolve().parents[2]
TABLES = {table.name for table in Base.metadata.sorted_tables}
TRIGRAM_INDEXES = {"ix_orders_customer_name_trgm", "ix_orders_customer_email_trgm"}


@pytest.fixture
async def empty_postgres(services: Services) -> AsyncIterator[str]:
    """A database of this test's own, beside the session's, dropped afterwards."""
    name = f"pickup_migrations_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(services.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = services.database_url.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(services.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _schema(url_or_engine: str | AsyncEngine) -> dict[str, Any]:
    """Tables and, per table, the names of its indexes, for what was actually created."""

    def read(connection: Connection) -> dict[str, Any]:
        inspector = inspect(connection)
        tables = set(inspector.get_table_names())
        indexes = {
            table: {index["name"] for index in inspector.get_indexes(table)}
            for table in tables & TABLES
        }
        return {"tables": tables, "indexes": indexes}

    engine = (
        create_oneoff_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    )
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        if isinstance(url_or_engine, str):
            await engine.dispose()


async def test_postgres_migrates_up_down_and_up_again(empty_postgres: str) -> None:
    await migrate(empty_postgres)
    schema = await _schema(empty_postgres)
    assert schema["tables"] == TABLES | {"alembic_version"}
    assert {
        "ix_orders_status_created_at",
        "ix_orders_pickup_at",
        "ix_orders_reservation_state_expires_at",
    } <= schema["indexes"]["orders"]
    assert "ix_outbox_unsent" in schema["indexes"]["outbox"]
    assert (
        "ix_order_status_history_order_id_created_at" in schema["indexes"]["order_status_history"]
    )
    assert "ix_inventory_ledger_product_id_created_at" in schema["indexes"]["inventory_ledger"]
    assert "ix_idempotency_keys_expires_at" in schema["indexes"]["idempotency_keys"]

    await downgrade(empty_postgres, "base")
    assert (await _schema(empty_postgres))["tables"] == {"alembic_version"}

    await migrate(empty_postgres)
    assert (await _schema(empty_postgres))["tables"] == TABLES | {"alembic_version"}
    await migrate(empty_postgres)  # already at head: nothing to do, nothing fails


async def test_the_migrations_create_exactly_what_the_models_describe(database_url: str) -> None:
    engine = create_oneoff_engine(database_url)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return [
            difference
            for difference in compare_metadata(context, Base.metadata)
            if not _is_trigram_index(difference)
        ]

    def named_constraints(connection: Connection) -> dict[str, set[str]]:
        inspector = inspect(connection)
        found: dict[str, set[str]] = {}
        for table in TABLES:
            names = {check["name"] for check in inspector.get_check_constraints(table)}
            names |= {unique["name"] for unique in inspector.get_unique_constraints(table)}
            names |= {fk["name"] for fk in inspector.get_foreign_keys(table)}
            names.add(inspector.get_pk_constraint(table)["name"])
            for index in inspector.get_indexes(table):
                if index["name"] in TRIGRAM_INDEXES:
                    continue
                where = index.get("dialect_options", {}).get("postgresql_where")
                names.add(f"{index['name']} WHERE {_predicate(where)}" if where else index["name"])
            found[table] = names
        return found

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            in_database = await connection.run_sync(named_constraints)
    finally:
        await engine.dispose()

    # Autogenerate ignores check constraints and partial-index predicates: compare those too.
    in_models: dict[str, set[str]] = {}
    for table in Base.metadata.sorted_tables:
        names = {str(constraint.name) for constraint in table.constraints}
        for index in table.indexes:
            where = index.dialect_options["postgresql"]["where"]
            named = str(index.name)
            names.add(f"{named} WHERE {_predicate(where)}" if where is not None else named)
        in_models[table.name] = names
    assert in_database == in_models


def _is_trigram_index(difference: Any) -> bool:
    """The PostgreSQL-only search indexes of migration 0002, which the models don't declare."""
    return difference[0] == "remove_index" and difference[1].name in TRIGRAM_INDEXES


def _predicate(sql: object) -> str:
    """An index predicate without the parentheses and casts PostgreSQL adds when storing it."""
    return " ".join(str(sql).replace("::text", "").replace("(", "").replace(")", "").split())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # A directory that does not exist yet: the engine must create it.
    return f"sqlite:///{tmp_path / 'var' / 'data' / 'pickup.db'}"


async def test_sqlite_migrates_and_round_trips_aware_datetimes(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    engine = create_engine(make_settings(database_url=sqlite_url))
    try:
        await migrate(engine)
        assert (await _schema(engine))["tables"] == TABLES | {"alembic_version"}

        pickup_at = datetime(2026, 12, 1, 9, 30, 15, 250_000, tzinfo=timezone(timedelta(hours=2)))
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as session:
            order = Order(
                code=new_order_code(),
                customer_name="Grace Hopper",
                customer_email="grace@example.com",
                pickup_at=pickup_at,
                subtotal_cents=350,
                total_cents=350,
                currency="GBP",
                lookup_token_hash="f" * 64,
                items=[
                    OrderItem(
                        product_id="bun",
                        product_name="Bun",
                        unit_price_cents=350,
                        quantity=1,
                        line_total_cents=350,
                    )
                ],
            )
            session.add(order)

        async with sessions() as session:
            stored = await session.get_one(Order, order.id)
            later = await session.scalar(
                select(Order.id).where(Order.pickup_at > pickup_at - timedelta(seconds=1))
            )
        assert stored.pickup_at == pickup_at
        assert stored.pickup_at.tzinfo is UTC
        assert stored.created_at.tzinfo is UTC
        assert abs(stored.created_at - datetime.now(UTC)) < timedelta(minutes=1)
        assert stored.status is OrderStatus.PENDING
        assert [item.product_id for item in stored.items] == ["bun"]
        # Comparisons happen in UTC, whatever offset the bound value carried.
        assert later == order.id

        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
            # The migration switched foreign keys off; the pooled connection has them back.
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            async with sessions.begin() as session:
                session.add(
                    OrderItem(
                        order_id=uuid.uuid4(),
                        product_id="bun",
                        product_name="Bun",
                        unit_price_cents=1,
                        quantity=1,
                        line_total_cents=1,
                    )
                )

        await downgrade(engine, "base")
        assert (await _schema(engine))["tables"] == {"alembic_version"}
        await migrate(engine)
    finally:
        await engine.dispose()


def test_the_alembic_command_line_migrates_the_database_named_in_the_environment(
    sqlite_url: str,
) -> None:
    environment = {**os.environ, "PICKUP_DATABASE_URL": sqlite_url}

    def alembic(*arguments: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *arguments],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    alembic("upgrade", "head")
    head = sorted(
        path.name.split("_", 1)[0] for path in (ROOT / "migrations/versions").glob("0*.py")
    )[-1]
    assert f"{head} (head)" in alembic("current")
    # Offline mode writes the SQL for a DBA to review instead of running it.
    assert "CREATE TABLE orders" in alembic("upgrade", "head", "--sql")
