"""The embedded development stack: the whole platform in one process, no infrastructure.

SQLite file for the orders side, fakeredis for carts and sessions, and an in-process moto
server for every AWS API; the same code paths as production, with other endpoints. Any
``PICKUP_*`` variable that is set wins over these defaults (point PICKUP_DATABASE_URL at a
real PostgreSQL, say), and a set PICKUP_AWS_ENDPOINT_URL replaces the embedded moto server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pickup.settings import ENV_PREFIX, Settings

logger = logging.getLogger("pickup.dev")

DEV_ADMIN_PASSWORD = "pickup-dev-password"  # noqa: S105 (development mode only)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def dev_defaults(*, host: str, port: int, data_dir: Path, aws_port: int) -> dict[str, Any]:
    return {
        "env": "development",
        "database_url": f"sqlite:///{(data_dir / 'pickup.db').resolve()}",
        "redis_url": "memory://dev",
        "aws_endpoint_url": f"http://127.0.0.1:{aws_port}",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "resource_prefix": "pickup-dev",
        "http_host": host,
        "http_port": port,
        "public_url": f"http://{host}:{port}",
        "admin_password": DEV_ADMIN_PASSWORD,
        # Stock alerts reach someone, so they show up in the dev outbox.
        "staff_alert_emails": ["kitchen@pickup.example"],
        "staff_alert_phones": ["+447700900999"],
    }


def unset_only(defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults whose variable the developer has not set."""
    return {
        key: value for key, value in defaults.items() if ENV_PREFIX + key.upper() not in os.environ
    }


@asynccontextmanager
async def embedded_aws(port: int) -> AsyncIterator[None]:
    """The AWS emulator on 127.0.0.1 (never 0.0.0.0) for the life of the app."""
    from pickup.emulator import AWSEmulator

    emulator = AWSEmulator("127.0.0.1", port)
    emulator.start()
    try:
        yield
    finally:
        emulator.stop()


def prepare(settings: Settings, *, reset: bool) -> Callable[[], Any]:
    @asynccontextmanager
    async def prepared() -> AsyncIterator[None]:
        from pickup.adapters.database import migrate
        from pickup.provisioning import bootstrap
        from pickup.seed.loader import seed

        await migrate(settings.database_url)
        await bootstrap(settings)
        for line in await seed(settings, reset=reset):
            logger.info("dev.seed %s", line)
        _banner(settings)
        yield

    return prepared


def pipeline(settings: Settings) -> Callable[[], Any]:
    """The worker (order consumer, sweeper, stream consumer) and the notifier, in-process.

    The API's own outbox relay serves them too, so the worker starts none of its own.
    """

    @asynccontextmanager
    async def running_pipeline() -> AsyncIterator[None]:
        from pickup.messaging.runner import running
        from pickup.notifier.process import notifier_components
        from pickup.observability.tracing import instrument_engine
        from pickup.runtime import Resources
        from pickup.worker.process import worker_components

        stopping = asyncio.Event()
        async with Resources.open(settings) as resources:
            instrument_engine(resources.engine)
            components = worker_components(resources, stopping, relay=False)
            components += notifier_components(resources, stopping)
            async with running(components, grace_seconds=5):
                yield

    return running_pipeline


def _banner(settings: Settings) -> None:
    url = str(settings.public_url).rstrip("/")
    password = settings.admin_password.get_secret_value() if settings.admin_password else "(unset)"
    lines = [
        "",
        f"  pickup is running at {url}",
        f"    menu API     {url}/api/menu",
        f"    API docs     {url}/api/docs",
        f"    health       {url}/healthz   readiness {url}/readyz   metrics {url}/metrics",
        f"    dev outbox   {url}/dev/outbox   (every email and text message sent)",
        f"    staff login  {settings.admin_email} / {password}",
        "  Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


def run_dev(
    *,
    host: str,
    port: int,
    data_dir: Path,
    reset: bool,
    settings_loader: Callable[..., Settings],
) -> None:
    import uvicorn

    from pickup.api import metrics as api_metrics
    from pickup.api.app import create_app
    from pickup.cli.common import access_log, configure_logging, logging_config
    from pickup.notifier import dev_outbox
    from pickup.observability.tracing import configure_tracing

    data_dir.mkdir(parents=True, exist_ok=True)
    aws_port = free_port()
    embed_aws = ENV_PREFIX + "AWS_ENDPOINT_URL" not in os.environ
    settings = settings_loader(
        **unset_only(dev_defaults(host=host, port=port, data_dir=data_dir, aws_port=aws_port))
    )
    configure_logging(settings)
    configure_tracing(settings, "pickup-dev")  # one process: one service in the traces
    companions: list[Callable[[], Any]] = []
    if embed_aws:
        companions.append(lambda: embedded_aws(aws_port))
    companions.append(prepare(settings, reset=reset))
    companions.append(pipeline(settings))
    app = create_app(settings, companions=tuple(companions))
    app.include_router(dev_outbox.router)
    app.include_router(api_metrics.router)  # one local process: /metrics on its only port
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        timeout_graceful_shutdown=2,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings),
        access_log=access_log(settings),
        lifespan="on",
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once everything has shut down
        print("pickup stopped.", flush=True)
