from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pickup.settings import DEVELOPMENT_SECRET_KEY, Environment, SettingsError, load_settings

VALID = {"database_url": "postgresql://pickup@db:5432/pickup", "redis_url": "redis://cache:6379/0"}
STRONG_KEY = "k" * 40


@pytest.fixture(autouse=True)
def no_pickup_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PICKUP_"):
            monkeypatch.delenv(name)


def error_lines(**values: object) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        load_settings(**values)
    return str(raised.value).splitlines()


def test_missing_required_settings_are_named_one_line_each() -> None:
    lines = error_lines()
    assert len(lines) == 2
    assert lines[0].startswith("PICKUP_DATABASE_URL is required: expected a database URL")
    assert lines[1].startswith("PICKUP_REDIS_URL is required: expected a Redis URL")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("database_url", "mysql://db/pickup", "PICKUP_DATABASE_URL is invalid"),
        ("redis_url", "http://cache", "PICKUP_REDIS_URL is invalid"),
        ("http_port", "eighty", "PICKUP_HTTP_PORT is invalid"),
        ("db_pool_size", "0", "PICKUP_DB_POOL_SIZE is invalid"),
        ("env", "staging", "PICKUP_ENV is invalid"),
        ("resource_prefix", "has spaces", "PICKUP_RESOURCE_PREFIX is invalid"),
        ("aws_endpoint_url", "not a url", "PICKUP_AWS_ENDPOINT_URL is invalid"),
        ("currency", "pounds", "PICKUP_CURRENCY is invalid"),
    ],
)
def test_a_malformed_setting_is_named_with_what_is_expected(
    field: str, value: str, expected: str
) -> None:
    lines = error_lines(**{**VALID, "env": "development", field: value})
    assert len(lines) == 1
    assert lines[0].startswith(expected)
    assert "expected" in lines[0]


def test_environment_variables_are_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICKUP_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("PICKUP_REDIS_URL", "redis://h:1/2")
    monkeypatch.setenv("PICKUP_ENV", "development")
    monkeypatch.setenv("PICKUP_CART_MAX_LINES", "12")
    settings = load_settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.cart_max_lines == 12
    assert settings.async_database_url == "postgresql+asyncpg://u@h/db"


def test_production_refuses_the_development_secret_key() -> None:
    lines = error_lines(**VALID)
    assert len(lines) == 1
    assert lines[0].startswith(
        "PICKUP_SECRET_KEY is invalid: must be set to a random value in production"
    )


def test_production_refuses_static_aws_keys() -> None:
    lines = error_lines(
        **VALID, secret_key=STRONG_KEY, aws_access_key_id="AKIA", aws_secret_access_key="s"
    )
    assert lines[0].startswith("PICKUP_AWS_ACCESS_KEY_ID is invalid: static AWS keys are refused")


def test_production_refuses_embedded_stores() -> None:
    lines = error_lines(database_url="sqlite:///x.db", redis_url="redis://h", secret_key=STRONG_KEY)
    assert lines[0].startswith("PICKUP_DATABASE_URL is invalid: SQLite is for development only")


def test_secrets_are_never_echoed_in_errors() -> None:
    lines = error_lines(**VALID, env="development", admin_password="short")
    assert lines[0].startswith("PICKUP_ADMIN_PASSWORD is invalid")
    assert "short" not in lines[0].replace("must be at least", "")


def test_development_accepts_embedded_defaults() -> None:
    settings = load_settings(
        env="development", database_url="sqlite:///var/p.db", redis_url="memory://dev"
    )
    assert settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY
    assert settings.async_database_url == "sqlite+aiosqlite:///var/p.db"
    assert settings.names.order_dlq == "pickup-order-processing-dlq"


def test_aws_client_arguments_carry_the_endpoint_and_keys_only_when_set() -> None:
    local = load_settings(
        **VALID,
        env="test",
        aws_endpoint_url="http://127.0.0.1:5010/",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert local.aws_client_kwargs() == {
        "region_name": "us-east-1",
        "endpoint_url": "http://127.0.0.1:5010",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    production = load_settings(**VALID, secret_key=STRONG_KEY, aws_region="eu-west-2")
    assert production.aws_client_kwargs() == {"region_name": "eu-west-2"}


def test_the_command_line_stops_with_one_line_per_variable_and_no_traceback() -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PICKUP_")}
    environment["PICKUP_HTTP_PORT"] = "99999"
    result = subprocess.run(
        [sys.executable, "-m", "pickup.cli.main", "check-config"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "pickup: configuration error:"
    assert sorted(line.split()[0] for line in lines[1:]) == [
        "PICKUP_DATABASE_URL",
        "PICKUP_HTTP_PORT",
        "PICKUP_REDIS_URL",
    ]
