"""Running a process's background components (consumers, loops) together, and stopping them.

A :class:`Component` runs until told to stop. :func:`running` starts them as tasks and, when
its block ends, asks each to stop (a consumer finishes the messages it holds), waits for them
up to a grace period and cancels whatever is left. :func:`serve_until_signalled` is the main
of a worker or notifier process: its components and the health server, until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pickup.messaging.health import Liveness, health_app, health_server
from pickup.observability import cloudwatch, tracing
from pickup.runtime import Resources
from pickup.settings import Settings

logger = logging.getLogger("pickup.messaging.runner")

STOP_GRACE_SECONDS = 30.0

ComponentsFactory = Callable[[Resources, asyncio.Event], list["Component"]]


@dataclass(frozen=True)
class Component:
    name: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], None] | None = None  # None: the task is cancelled to stop it


@asynccontextmanager
async def running(
    components: list[Component], *, grace_seconds: float = STOP_GRACE_SECONDS
) -> AsyncIterator[Liveness]:
    """Run ``components`` for the duration of the block; yields their liveness checks."""
    with tracing.quiet():  # idle polls are no traces; a message's handling is traced again
        tasks = {
            component.name: asyncio.create_task(_logged(component), name=component.name)
            for component in components
        }
    try:
        yield {name: (lambda task=task: not task.done()) for name, task in tasks.items()}
    finally:
        for component in components:
            if component.stop is not None:
                component.stop()
            else:
                tasks[component.name].cancel()
        _, pending = await asyncio.wait(tasks.values(), timeout=grace_seconds)
        for task in pending:
            logger.warning("component.stop_timeout name=%s", task.get_name())
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def _logged(component: Component) -> None:
    try:
        await component.run()
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("component.crashed name=%s", component.name)
        raise


async def serve_until_signalled(
    settings: Settings, build: ComponentsFactory, *, process: str
) -> None:
    """A worker or notifier process: components and health server until SIGTERM or SIGINT."""
    tracing.configure_tracing(settings, f"pickup-{process}")
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with (
        Resources.open(settings) as resources,
        # Outside the components: its last flush counts the messages they finish on the way out.
        cloudwatch.publishing(resources.aws, settings, process),
    ):
        tracing.instrument_engine(resources.engine)
        async with running(build(resources, stopping)) as liveness:
            server = health_server(
                health_app(resources, liveness), settings.http_host, settings.health_port
            )
            health = asyncio.create_task(server.serve(), name="health-server")
            logger.info(
                "%s.started health=http://%s:%s", process, settings.http_host, settings.health_port
            )
            await stopping.wait()
            logger.info("%s.stopping", process)
            server.should_exit = True
        await health
    logger.info("%s.stopped", process)
