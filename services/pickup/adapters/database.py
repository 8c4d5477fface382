"""Engines, sessions and migrations for PostgreSQL (asyncpg) and, in development, SQLite.

SQLite is made safe for concurrent writers the way TOOLCHAIN.md records: WAL, a busy
timeout, foreign keys on, and every transaction opened with ``BEGIN IMMEDIATE`` (the driver's
own BEGIN handling is switched off), which serialises writers instead of failing them.
Concurrency is still tested on PostgreSQL, because that serialisation hides lost updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from pickup.core.errors import ServiceUnavailable
from pickup.paths import shipped
from pickup.settings import Settings, async_database_url

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 5_000
PING_TIMEOUT_SECONDS = 2.0


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT of the session's dialect, which offers ``on_conflict_do_nothing/update``."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def create_engine(settings: Settings) -> AsyncEngine:
    """The process's engine, with the pool bounds from ``settings``. Connects lazily."""
    return _build_engine(
        async_database_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        echo=settings.db_echo,
    )


def create_oneoff_engine(url: str) -> AsyncEngine:
    """An engine without a pool for a one-off job (a migration, a CLI command) on ``url``."""
    return _build_engine(async_database_url(url), poolclass=NullPool)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after commit: in async code a lazy refresh would need I/O.
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine, timeout_seconds: float = PING_TIMEOUT_SECONDS) -> None:
    """Run ``SELECT 1``; raise :class:`ServiceUnavailable` if the database does not answer."""
    try:
        async with asyncio.timeout(timeout_seconds), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError as error:
        raise ServiceUnavailable(
            f"the database did not answer within {timeout_seconds:g}s"
        ) from error
    except Exception as error:
        raise ServiceUnavailable(f"the database cannot be reached: {error}") from error


def _build_engine(
    url: str,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    pool_timeout: float | None = None,
    echo: bool = False,
    poolclass: type[NullPool] | None = None,
) -> AsyncEngine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
    memory = parsed.get_backend_name() == "sqlite" and _sqlite_in_memory(parsed.database)
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    elif not memory:  # an in-memory SQLite database lives in one StaticPool connection
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
        kwargs = {key: value for key, value in kwargs.items() if value is not None}
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, **kwargs)

    if not memory and parsed.database and not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **kwargs)
    _configure_sqlite(engine, wal=not memory)
    return engine


def _sqlite_in_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or "mode=memory" in database


def _configure_sqlite(engine: AsyncEngine, *, wal: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, decides when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes
        # fails with SQLITE_BUSY at once instead of waiting for the busy timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# --- Migrations ---------------------------------------------------------------------------------


def migrations_path() -> Path:
    """The Alembic script directory: inside the installed package, else the repository's."""
    return shipped("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration that needs no alembic.ini (and leaves logging alone)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(url_or_engine: str | AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database to ``revision``; safe to call from inside a running event loop."""
    from alembic import command

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    await _with_engine(url_or_engine, upgrade)


async def downgrade(url_or_engine: str | AsyncEngine, revision: str) -> None:
    """Downgrade the database to ``revision`` (``"base"`` drops every table)."""
    from alembic import command

    def downgrade_(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    await _with_engine(url_or_engine, downgrade_)


async def _with_engine(
    url_or_engine: str | AsyncEngine, work: Callable[[Connection], None]
) -> None:
    if isinstance(url_or_engine, AsyncEngine):
        await run_schema_change(url_or_engine, work)
        return
    engine = create_oneoff_engine(url_or_engine)
    try:
        await run_schema_change(engine, work)
    finally:
        await engine.dispose()


async def run_schema_change(engine: AsyncEngine, work: Callable[[Connection], None]) -> None:
    """Run ``work`` (synchronous, e.g. an Alembic command) on one connection in one transaction.

    On SQLite, foreign keys are off for the run and checked before it commits.
    """
    async with engine.connect() as connection:
        if engine.dialect.name != "sqlite":
            async with connection.begin():
                await connection.run_sync(work)
            return
        # A batch rebuild of a parent table with foreign keys ON deletes every child row, and
        # the pragma is ignored inside a transaction: switch it off before BEGIN.
        await connection.run_sync(_set_sqlite_foreign_keys, False)
        try:
            async with connection.begin():
                await connection.run_sync(work)
                violations = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if violations:
                    raise RuntimeError(f"the schema change broke foreign keys: {violations[:10]}")
        finally:
            await connection.run_sync(_set_sqlite_foreign_keys, True)


def _set_sqlite_foreign_keys(connection: Connection, enabled: bool) -> None:
    # Straight to the driver: through SQLAlchemy the statement would open a transaction.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
    finally:
        cursor.close()
