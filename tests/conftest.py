"""Fixtures shared by the whole suite: real PostgreSQL, Redis and moto (see tests/services.py).

Isolation: each test session migrates a database of its own; each test gets settings with a
resource prefix of its own (so AWS resources never collide) and an emptied Redis database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pickup.settings import Environment, Settings, load_settings
from tests.services import ServiceError, Services, claim_redis_database, ensure_services

pytest_plugins = ("tests.integration.staff_fixtures",)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    try:
        found = ensure_services()
    except ServiceError as error:
        pytest.exit(f"test services unavailable: {error}", returncode=3)
    # Tests empty their Redis database; a database of this session's own keeps two runs on
    # one machine (two developers, or a developer and CI) from emptying each other's.
    claim = claim_redis_database(found.redis_url)
    found.redis_url = claim.url
    yield found
    claim.release()
    found.stop_containers()


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@asynccontextmanager
async def fresh_database(services: Services) -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database of its own, dropped on exit."""
    import asyncpg

    from pickup.adapters.database import migrate

    name = f"pickup_test_{uuid.uuid4().hex[:12]}"
    admin_dsn = services.database_url
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _with_database(admin_dsn, name)
    await migrate(url)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def database_url(services: Services) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    async with fresh_database(services) as url:
        yield url


@pytest.fixture
async def db_engine(settings: Settings) -> AsyncIterator[Any]:
    """An engine on the session's database; every table is emptied after the test."""
    from sqlalchemy import text

    from pickup.adapters.database import create_engine
    from pickup.adapters.orm import Base

    engine = create_engine(settings)
    yield engine
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


def delete_aws_resources(endpoint: str, prefix: str) -> None:
    """Remove what a test created under its prefix, so the shared moto server stays lean."""
    import boto3

    options = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    dynamodb = boto3.client("dynamodb", **options)
    for table in dynamodb.list_tables()["TableNames"]:
        if table.startswith(prefix + "-"):
            dynamodb.delete_table(TableName=table)
    sqs = boto3.client("sqs", **options)
    for url in sqs.list_queues(QueueNamePrefix=prefix + "-").get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
    sns = boto3.client("sns", **options)
    for topic in sns.list_topics()["Topics"]:
        if topic["TopicArn"].rsplit(":", 1)[-1].startswith(prefix + "-"):
            sns.delete_topic(TopicArn=topic["TopicArn"])


def load_settings_for(services: Services, **overrides: Any) -> Settings:
    """Settings pointing at the test services; keyword arguments override any field."""
    values: dict[str, Any] = {
        "env": Environment.TEST,
        "redis_url": services.redis_url,
        "aws_endpoint_url": services.aws_endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "resource_prefix": f"t{uuid.uuid4().hex[:10]}",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def make_settings(services: Services, database_url: str) -> Iterator[Callable[..., Settings]]:
    """Settings for the test services, with a resource prefix of this test's own."""
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def make(**overrides: Any) -> Settings:
        defaults = {"database_url": database_url, "resource_prefix": prefix}
        return load_settings_for(services, **{**defaults, **overrides})

    yield make
    delete_aws_resources(services.aws_endpoint, prefix)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Any]:
    from pickup.adapters.redis import create_redis

    client = create_redis(settings)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def aws(settings: Settings) -> AsyncIterator[Any]:
    from pickup.adapters.aws import AWSClients

    async with AWSClients(settings) as clients:
        yield clients
