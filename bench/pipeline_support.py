"""Whether the order pipeline (``pickup worker`` / ``pickup notifier``) exists in this tree,
and starting it beside the API for the scenarios that want it."""

from __future__ import annotations

import importlib.util
import time

from bench.context import Context


def has_command(name: str) -> bool:
    try:
        from pickup.cli.main import main
    except Exception:
        return False
    return name in getattr(main, "commands", {})


def worker_available() -> bool:
    return has_command("worker") and importlib.util.find_spec("pickup.worker.process") is not None


def notifier_available() -> bool:
    return (
        has_command("notifier") and importlib.util.find_spec("pickup.notifier.process") is not None
    )


def start_pipeline(ctx: Context, *, notifier: bool = True) -> list[str]:
    """Start the worker (and notifier) if not running; the names of what runs."""
    running = []
    wanted = [("worker", worker_available())]
    if notifier:
        wanted.append(("notifier", notifier_available()))
    started = False
    for name, available in wanted:
        if not available:
            continue
        if name not in ctx.env.processes:
            process = ctx.env.start_command(name, name)
            ctx.monitor.watch(name, process.pid)
            started = True
        running.append(name)
    if started:
        # Their idle memory, once started up and before any load reaches them.
        time.sleep(3)
        phase, ctx.monitor.phase = ctx.monitor.phase, "idle"
        ctx.monitor.sample()
        ctx.monitor.phase = phase
    return running
