"""Commands of the order pipeline (worker, notifier, dead-letter queues)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
