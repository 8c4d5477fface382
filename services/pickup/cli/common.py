"""What every ``pickup`` command shares: settings loading, logging, friendly failures."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from pickup.settings import Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    click.echo(f"pickup: {message}", err=True)
    sys.exit(code)


def load_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as error:
        lines = str(error).splitlines()
        click.echo("pickup: configuration error:", err=True)
        for line in lines:
            click.echo(f"  {line}", err=True)
        sys.exit(2)


def friendly_errors(function: F) -> F:
    """Turn expected failures (an unreachable service, refused credentials) into one line."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(*args, **kwargs)
        except (BotoCoreError, ClientError) as error:
            fail(f"AWS request failed: {error}", 1)
        except (ConnectionError, OSError) as error:
            fail(f"cannot connect: {error}", 1)

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
