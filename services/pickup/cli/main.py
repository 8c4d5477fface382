"""The ``pickup`` command: one entry point for every process and every operator task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import click

from pickup.cli.common import (
    access_log,
    configure_logging,
    friendly_errors,
    load_or_exit,
    logging_config,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pickup")
def main() -> None:
    """pickup: order ahead, pick up on time."""


@main.command("check-config")
def check_config() -> None:
    """Validate the settings (PICKUP_* variables and the SSM overlay) and show them."""
    from pickup.settings import redact_url

    settings = load_or_exit()
    for name, value in settings.model_dump().items():
        shown = redact_url(value) if isinstance(value, str) else value
        click.echo(f"PICKUP_{name.upper()}={shown}")
    click.echo("configuration is valid")


@main.command()
@click.option("--host", default=None, help="Listen address (default: PICKUP_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (default: PICKUP_HTTP_PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of /metrics, never the public one (default: PICKUP_HEALTH_PORT; 0: any free).",
)
def api(host: str | None, port: int | None, workers: int, metrics_port: int | None) -> None:
    """Serve the HTTP API and pages, and /metrics on a port of its own."""
    import os

    import uvicorn

    # Taken before prometheus-client is imported: this parent process records nothing, and
    # the directory is handed back to the workers (emptied) by multiprocess_dir.
    configured_dir = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from pickup.api.metrics import metrics_server, multiprocess_dir

    settings = load_or_exit()
    configure_logging(settings)
    host = host or settings.http_host
    metrics_port = settings.health_port if metrics_port is None else metrics_port
    with (
        contextlib.suppress(KeyboardInterrupt),  # re-raised by uvicorn after a clean stop
        multiprocess_dir(workers, configured_dir) as shared,
        metrics_server(host, metrics_port, shared),
    ):
        uvicorn.run(
            "pickup.api.main:create",
            factory=True,
            host=host,
            port=port or settings.http_port,
            workers=workers,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            timeout_graceful_shutdown=5,
            log_level=settings.log_level.lower(),
            # uvicorn applies it in each worker process too: every line in one format.
            log_config=logging_config(settings),
            access_log=access_log(settings),
        )


@main.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--downgrade", is_flag=True, help="Move down to --revision instead of up.")
@friendly_errors
def migrate(revision: str, downgrade: bool) -> None:
    """Apply (or roll back) the database migrations."""
    from pickup.adapters import database

    settings = load_or_exit()
    step = database.downgrade if downgrade else database.migrate
    asyncio.run(step(settings.database_url, revision))
    click.echo(f"database at revision {revision}")


@main.command("bootstrap")
@click.option(
    "--monitoring",
    is_flag=True,
    help="Also create the CloudWatch dashboard, the alarms and their SNS topic.",
)
@friendly_errors
def bootstrap_command(monitoring: bool) -> None:
    """Create the DynamoDB table, queues, topics, SES identity and SSM parameters."""
    from pickup.provisioning import run_bootstrap, summary

    settings = load_or_exit()
    steps = run_bootstrap(settings)
    if monitoring:
        from pickup.cli.common import fail
        from pickup.observability.monitoring import MonitoringConfigError, bootstrap_monitoring

        try:
            steps += asyncio.run(bootstrap_monitoring(settings))
        except MonitoringConfigError as error:
            fail(str(error))
    for step in steps:
        click.echo(str(step))
    click.echo(summary(steps))


@main.command()
@click.option(
    "--reset",
    is_flag=True,
    help="Wipe and reload the development data: tables, queues, orders, staff.",
)
@friendly_errors
def seed(reset: bool) -> None:
    """Load the sample menu, stock, orders and the admin account."""
    from pickup.seed.loader import run_seed

    settings = load_or_exit()
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

    run_dev(host=host, port=port, data_dir=data_dir, reset=reset, settings_loader=load_or_exit)


def _register_feature_commands() -> None:
    from pickup.cli import operator, pipeline, staff

    for command in (*pipeline.COMMANDS, *staff.COMMANDS, *operator.COMMANDS):
        main.add_command(command)


_register_feature_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
