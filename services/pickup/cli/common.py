"""What every ``pickup`` command shares: settings loading, logging, friendly failures."""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from pickup.settings import Environment, Settings, SettingsError, load_settings

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


NOISY_LOGGERS = (
    "botocore",
    "aiobotocore",
    "werkzeug",
    "moto",
    "urllib3",
    "alembic.runtime.plugins",
)


def log_format(settings: Settings) -> str:
    """``json`` or ``text``: ``auto`` is text in development and JSON everywhere else."""
    if settings.log_format != "auto":
        return settings.log_format
    return "text" if settings.env is Environment.DEVELOPMENT else "json"


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of every pickup process, uvicorn's loggers included.

    One handler on the root logger (stderr) with the redaction filter; uvicorn's loggers
    propagate to it, so its lines have the same format. Give this to uvicorn as
    ``log_config``: each of its worker processes applies it again.
    """
    formatter = "JsonFormatter" if log_format(settings) == "json" else "TextFormatter"
    level = settings.log_level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "pickup.observability.logs.RedactingFilter"}},
        "formatters": {"default": {"()": f"pickup.observability.logs.{formatter}"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            **{name: {"level": "WARNING"} for name in NOISY_LOGGERS},
            # uvicorn would give these handlers of their own; they propagate to ours instead.
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": level, "handlers": [], "propagate": True},
        },
    }


def access_log(settings: Settings) -> bool:
    """uvicorn's access log: in development only. Elsewhere the request metrics (and traces)
    cover requests, and a logged query string could hold an order's lookup token."""
    return log_format(settings) == "text"


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
