"""The Jinja2 environment of the customer pages and the filters the templates use."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pickup.paths import shipped

_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(cents: int | None, currency: str) -> str:
    """``340, "GBP"`` -> ``£3.40``; an unknown currency keeps its code (``3.40 CHF``)."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    amount = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def clock(moment: datetime | None, zone: tzinfo) -> str:
    return "" if moment is None else moment.astimezone(zone).strftime("%H:%M")


def day(moment: datetime | None, zone: tzinfo, today: date | None = None) -> str:
    """``Today``, ``Tomorrow`` or ``Tue 12 Mar``, in the shop's time zone."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    today = today or datetime.now(zone).date()
    offset = (local.date() - today).days
    if offset == 0:
        return "Today"
    if offset == 1:
        return "Tomorrow"
    return f"{local:%a} {local.day} {local:%b}"


def allergen(name: str) -> str:
    return name.replace("-", " ").capitalize()


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(shipped("web") / "templates" / "pages"),
        # Every template is HTML: escape everything unless marked safe.
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, clock=clock, day=day, allergen=allergen)
    return env
