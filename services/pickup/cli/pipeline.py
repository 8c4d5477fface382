"""Commands of the order pipeline: ``pickup worker``, ``pickup notifier`` and ``pickup dlq``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from pickup.cli.common import configure_logging, fail, friendly_errors, load_or_exit
from pickup.settings import Settings

T = TypeVar("T")


@click.command()
def worker() -> None:
    """Confirm orders from the order queue, expire stale reservations, follow stock changes."""
    from pickup.worker.process import run_worker

    settings = load_or_exit()
    configure_logging(settings)
    asyncio.run(run_worker(settings))


@click.command()
def notifier() -> None:
    """Send the emails and text messages of order events and stock alerts."""
    from pickup.notifier.process import run_notifier

    settings = load_or_exit()
    configure_logging(settings)
    asyncio.run(run_notifier(settings))


def _with_clients(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from pickup.adapters.aws import AWSClients

    async def run() -> T:
        async with AWSClients(settings) as aws:
            return await work(aws)

    return asyncio.run(run())


def _resolve(settings: Settings, queue: str) -> None:
    from pickup.dlq import UnknownQueue, resolve

    try:
        resolve(settings, queue)
    except UnknownQueue as error:
        fail(str(error))


QUEUE = click.argument("queue", metavar="QUEUE")
QUEUE_HELP = "QUEUE is orders or notifications (or a full queue name)."


@click.group()
def dlq() -> None:
    """Inspect, redrive and purge the dead-letter queues."""


@dlq.command("list")
@friendly_errors
def dlq_list() -> None:
    """Each queue with its waiting, in-flight and dead-lettered message counts."""
    from pickup.dlq import counts

    settings = load_or_exit()
    rows = _with_clients(settings, lambda aws: counts(aws, settings))
    width = max(len(row.queue) for row in rows)
    click.echo(f"{'queue':<{width}}  {'waiting':>7}  {'in flight':>9}  {'delayed':>7}  {'dead':>5}")
    for row in rows:
        click.echo(
            f"{row.queue:<{width}}  {row.waiting:>7}  {row.in_flight:>9}  "
            f"{row.delayed:>7}  {row.dead:>5}"
        )


@dlq.command("show", epilog=QUEUE_HELP)
@QUEUE
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON lines.")
@friendly_errors
def dlq_show(queue: str, limit: int, as_json: bool) -> None:
    """Summaries of the messages in a queue's DLQ (they stay where they are)."""
    from pickup.dlq import peek

    settings = load_or_exit()
    _resolve(settings, queue)
    letters = _with_clients(settings, lambda aws: peek(aws, settings, queue, limit))
    if as_json:
        for letter in letters:
            click.echo(json.dumps(letter.as_dict()))
        return
    if not letters:
        click.echo("the dead-letter queue is empty")
        return
    for letter in letters:
        sent = letter.sent_at.isoformat(timespec="seconds") if letter.sent_at else "-"
        click.echo(
            f"{letter.message_id}  {letter.event_type or '(unknown type)'}  "
            f"received {letter.receive_count}x  sent {sent}\n    {letter.summary}"
        )


@dlq.command("redrive", epilog=QUEUE_HELP)
@QUEUE
@click.option("--limit", type=click.IntRange(1, None), help="Move at most this many.")
@friendly_errors
def dlq_redrive(queue: str, limit: int | None) -> None:
    """Move dead-lettered messages back to their queue (safe to repeat)."""
    from pickup.dlq import redrive

    settings = load_or_exit()
    _resolve(settings, queue)
    moved = _with_clients(settings, lambda aws: redrive(aws, settings, queue, limit))
    click.echo(f"moved {moved} message{'s' if moved != 1 else ''} back to {queue}")


@dlq.command("purge", epilog=QUEUE_HELP)
@QUEUE
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
def dlq_purge(queue: str, yes: bool) -> None:
    """Delete every message in a queue's DLQ."""
    from pickup.dlq import purge, resolve

    settings = load_or_exit()
    _resolve(settings, queue)
    _, dead = resolve(settings, queue)
    if not yes:
        click.confirm(f"Delete every message in {dead}?", abort=True)
    count = _with_clients(settings, lambda aws: purge(aws, settings, queue))
    click.echo(f"purged {dead} (about {count} message{'s' if count != 1 else ''})")


COMMANDS: list[click.Command] = [worker, notifier, dlq]
