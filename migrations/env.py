"""Alembic environment for pickup, for both PostgreSQL and SQLite.

Two ways in:
- from the application (``pickup.adapters.database.migrate``), which passes an open
  connection in ``config.attributes["connection"]`` and owns the transaction;
- from the ``alembic`` command line, which reads ``PICKUP_DATABASE_URL`` (or
  ``sqlalchemy.url`` in alembic.ini) and runs the same code through the async driver.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection, make_url

from pickup.adapters.orm import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and not config.attributes.get("connection"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = os.environ.get("PICKUP_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set PICKUP_DATABASE_URL to the database to migrate")
    return url


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table (a no-op elsewhere).
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = make_url(_database_url())
    _configure(dialect_name=url.get_backend_name(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_command_line() -> None:
    from pickup.adapters.database import create_oneoff_engine, run_schema_change

    engine = create_oneoff_engine(_database_url())
    try:
        # The application's path: one transaction, and SQLite with foreign keys off.
        await run_schema_change(engine, _run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_from_command_line())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
