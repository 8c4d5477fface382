"""The command of the inventory operator."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
