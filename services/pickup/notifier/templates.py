"""Rendering of notifications from the Jinja2 templates in ``web/templates/notifications``.

Each notification has an HTML and a plain-text email body (``<name>.html``, ``<name>.txt``;
the text template sets the ``subject``) and a text message (``<name>.sms.txt``). HTML is
autoescaped; text is not, as nothing renders it as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pickup.paths import shipped

CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(shipped("web") / "templates" / "notifications"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(name: str, context: dict[str, Any]) -> RenderedEmail:
    env = environment()
    text_module = env.get_template(f"{name}.txt").make_module(context)
    subject = " ".join(str(getattr(text_module, "subject", "")).split())
    html = env.get_template(f"{name}.html").render(subject=subject, **context)
    return RenderedEmail(subject=subject, text=str(text_module).strip() + "\n", html=html)


def render_sms(name: str, context: dict[str, Any]) -> str:
    return " ".join(environment().get_template(f"{name}.sms.txt").render(context).split())


def money(cents: int, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


def local_time(moment: datetime | None, zone: ZoneInfo, *, with_day: bool = True) -> str:
    """``Tue 12 Nov, 14:30`` in the shop's time zone (``14:30`` without the day)."""
    if moment is None:
        return "to be confirmed"
    local = moment.astimezone(zone)
    return local.strftime("%a %d %b, %H:%M") if with_day else local.strftime("%H:%M")
