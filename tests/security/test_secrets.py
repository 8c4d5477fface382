"""No secret leaves the process: an unexpected error answers a generic 500, a database that
cannot be reached never puts its password or the signing key in a response or a log line,
and whatever prints settings (configuration errors, ``pickup check-config``) masks the
passwords inside database and Redis URLs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import httpx
import pytest
from click.testing import CliRunner

from pickup.api.app import create_app
from pickup.cli.main import main as cli
from pickup.settings import Settings, SettingsError, load_settings, redact_url

DB_PASSWORD = "Db-Passw0rd-" + uuid.uuid4().hex
SECRET_KEY = "signing-key-" + uuid.uuid4().hex + uuid.uuid4().hex
REDIS_PASSWORD = "Redis-Passw0rd-" + uuid.uuid4().hex


async def test_an_unexpected_error_is_a_generic_problem_that_reveals_nothing(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(secret_key=SECRET_KEY))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"cannot reach postgresql://pickup:{DB_PASSWORD}@db/pickup")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client,
    ):
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/internal-error")
    for secret in (DB_PASSWORD, SECRET_KEY, "RuntimeError", "Traceback", "postgresql://"):
        assert secret not in response.text
    # Answered by Starlette's outermost error middleware, and still hardened.
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # ... while the operator still gets the whole story in the log.
    assert any(record.exc_info for record in caplog.records)


async def test_an_unreachable_database_leaks_no_password_or_key(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(
        database_url=f"postgresql://pickup:{DB_PASSWORD}@127.0.0.1:9/pickup",
        secret_key=SECRET_KEY,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client,
    ):
        answers = [
            await client.get("/readyz"),
            await client.get(f"/api/orders/status/{uuid.uuid4()}"),
            await client.get(f"/api/orders/{uuid.uuid4()}", params={"token": "x" * 40}),
            await client.post(
                "/api/staff/login", json={"email": "a@shop.example", "password": "p" * 12}
            ),
        ]
    assert {answer.status_code for answer in answers} & {503}  # the database really failed
    assert caplog.records  # and it was logged
    logged = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    for text in [answer.text for answer in answers] + [logged]:
        assert DB_PASSWORD not in text
        assert SECRET_KEY not in text


def test_configuration_errors_and_check_config_mask_url_passwords(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(database_url=f"mysql://pickup:{DB_PASSWORD}@db/pickup")
    assert "PICKUP_DATABASE_URL" in str(error.value)
    assert DB_PASSWORD not in str(error.value)
    assert "mysql://pickup:***@db/pickup" in str(error.value)

    for name in ("PICKUP_ENV", "PICKUP_SSM_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PICKUP_ENV", "test")
    monkeypatch.setenv("PICKUP_DATABASE_URL", f"postgresql://pickup:{DB_PASSWORD}@db/pickup")
    monkeypatch.setenv("PICKUP_REDIS_URL", f"redis://:{REDIS_PASSWORD}@cache:6379/0")
    monkeypatch.setenv("PICKUP_SECRET_KEY", SECRET_KEY)
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 0, result.output
    assert "PICKUP_DATABASE_URL=postgresql://pickup:***@db/pickup" in result.output
    assert "PICKUP_REDIS_URL=redis://:***@cache:6379/0" in result.output
    for secret in (DB_PASSWORD, REDIS_PASSWORD, SECRET_KEY):
        assert secret not in result.output


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql://u:pw@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("redis://:pw@cache/0", "redis://:***@cache/0"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
        ("rediss://u:p%40ss@cache/0", "rediss://u:***@cache/0"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_hides_only_the_password(given: str, shown: str) -> None:
    assert redact_url(given) == shown
