"""The ``pickup`` command: one entry point for every process and every operator task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from pickup.settings import Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"pickup: {message}", err=True)
    sys.exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as error:
        lines = str(error).splitlines()
        click.echo("pickup: configuration error:", err=True)
        for line in lines:
            click.echo(f"  {line}", err=True)
        sys.exit(2)


def _friendly_errors(function: F) -> F:
    """Turn expected failures (an unreachable service, refused credentials) into one line."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(*args, **kwargs)
        except (BotoCoreError, ClientError) as error:
            _fail(f"AWS request failed: {error}", 1)
        except (ConnectionError, OSError) as error:
            _fail(f"cannot connect: {error}", 1)

    return wrapper  # type: ignore[return-value]


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for noisy in (
        "botocore",
        "aiobotocore",
        "werkzeug",
        "moto",
        "urllib3",
        "alembic.runtime.plugins",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pickup")
def main() -> None:
    """pickup: order ahead, pick up on time."""


@main.command("check-config")
def check_config() -> None:
    """Validate the settings (PICKUP_* variables and the SSM overlay) and show them."""
    settings = _settings()
    for name, value in settings.model_dump().items():
        click.echo(f"PICKUP_{name.upper()}={value}")
    click.echo("configuration is valid")


@main.command()
@click.option("--host", default=None, help="Listen address (default: PICKUP_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (default: PICKUP_HTTP_PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
def api(host: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API and pages."""
    import uvicorn

    settings = _settings()
    configure_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):  # re-raised by uvicorn after a clean stop
        uvicorn.run(
            "pickup.api.main:create",
            factory=True,
            host=host or settings.http_host,
            port=port or settings.http_port,
            workers=workers,
            proxy_headers=True,
            forwarded_allow_ips="*",
            timeout_graceful_shutdown=10,
            log_level=settings.log_level.lower(),
        )


@main.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--downgrade", is_flag=True, help="Move down to --revision instead of up.")
@_friendly_errors
def migrate(revision: str, downgrade: bool) -> None:
    """Apply (or roll back) the database migrations."""
    from pickup.adapters import database

    settings = _settings()
    step = database.downgrade if downgrade else database.migrate
    asyncio.run(step(settings.database_url, revision))
    click.echo(f"database at revision {revision}")


@main.command("bootstrap")
@_friendly_errors
def bootstrap_command() -> None:
    """Create the DynamoDB table, queues, topics, SES identity and SSM parameters."""
    from pickup.provisioning import run_bootstrap, summary

    settings = _settings()
    steps = run_bootstrap(settings)
    for step in steps:
        click.echo(str(step))
    click.echo(summary(steps))


@main.command()
@click.option(
    "--reset",
    is_flag=True,
    help="Wipe and reload the development data: tables, queues, orders, staff.",
)
@_friendly_errors
def seed(reset: bool) -> None:
    """Load the sample menu, stock, orders and the admin account."""
    from pickup.seed.loader import run_seed

    settings = _settings()
    report = run_seed(settings, reset=reset)
    for line in report:
        click.echo(line)


@main.command("aws-emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5010, show_default=True)
def aws_emulator(host: str, port: int) -> None:
    """Serve the AWS APIs from moto, DynamoDB requests applied atomically (never production)."""
    from pickup.emulator import AWSEmulator

    logging.basicConfig(level=logging.WARNING)
    emulator = AWSEmulator(host, port)
    click.echo(f"AWS emulator listening on {emulator.url}")
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var"),
    show_default=True,
    help="Where the embedded SQLite database lives.",
)
@click.option("--reset", is_flag=True, help="Start from freshly seeded sample data.")
def dev(host: str, port: int, data_dir: Path, reset: bool) -> None:
    """Run the whole platform in one process on embedded defaults (no infrastructure)."""
    from pickup.dev import run_dev

    run_dev(host=host, port=port, data_dir=data_dir, reset=reset, settings_loader=_settings)


if __name__ == "__main__":  # pragma: no cover
    main()
