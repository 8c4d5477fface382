"""Structured logs: one JSON object a line, ids as fields, no customer contact details.

The convention for a log call: the message starts with its event name, a dotted lowercase key
(``order.confirmed``), followed by ``key=value`` fields::

    logger.info("order.confirmed order_id=%s queue_ahead=%s", order_id, ahead)

:class:`JsonFormatter` turns that into ``{"timestamp", "level", "event": "order.confirmed",
"message", "logger", "order_id", "queue_ahead", ...}``; a message without a leading key (a
library's) has its logger's name as its event. ``extra=`` fields are kept too; ``order_id``
also comes from :func:`order_context` (a context variable), and ``trace_id``/``span_id`` from
the active OpenTelemetry span. :class:`RedactingFilter` masks email addresses and phone
numbers anywhere in a record (``j***@example.com``, ``+44******1234``): an operator can tell
records of one customer apart without the log holding their contact details.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

EMAIL = re.compile(
    r"(?<![\w.%+-])([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)
# E.164 as the project stores numbers, also with the spaces, dots or dashes people type.
PHONE = re.compile(r"(?<![\w+])\+\d(?:[\s().-]?\d){6,14}(?!\d)")
EVENT = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?=\s|$)")
FIELD = re.compile(r"(?:^|\s)([a-z_][a-z0-9_]*)=(.*?)(?=\s+[a-z_][a-z0-9_]*=|$)", re.S)

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_RESERVED = {"timestamp", "level", "event", "message", "logger", "trace_id", "span_id"}
# uvicorn's copy of its message with terminal colours: noise in a JSON line.
_DROPPED = {"color_message"}

_order_id: ContextVar[str | None] = ContextVar("pickup_log_order_id", default=None)


def _mask_email(match: re.Match[str]) -> str:
    return f"{match.group(1)}***@{match.group(2)}"


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "+" + digits[:2] + "*" * (len(digits) - 6) + digits[-4:]


def redact(text: str) -> str:
    """``text`` with every email address and phone number masked."""
    if "@" in text:
        text = EMAIL.sub(_mask_email, text)
    if "+" in text:
        text = PHONE.sub(_mask_phone, text)
    return text


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


@contextlib.contextmanager
def order_context(order_id: object) -> Iterator[None]:
    """Every record logged inside (in this task and the tasks it starts) names the order."""
    token = _order_id.set(str(order_id))
    try:
        yield
    finally:
        _order_id.reset(token)


class RedactingFilter(logging.Filter):
    """Masks email addresses and phone numbers in the message and the ``extra=`` fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: the handler reports it when formatting
            return True
        record.msg, record.args = redact(message), None
        for name, value in list(record.__dict__.items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, _redacted(value))
        return True


def _span_ids() -> tuple[str, str] | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event = EVENT.match(message)
        document: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "event": event.group(1) if event else record.name,
            "message": message,
            "logger": record.name,
        }
        ids = _span_ids()
        if ids is not None:
            document["trace_id"], document["span_id"] = ids
        if event:
            for name, value in FIELD.findall(message[event.end() :]):
                # `order_id=None` (not known here) is no field, nor hides the context's order.
                if name not in _RESERVED and value.strip() not in {"", "None"}:
                    document.setdefault(name, value.strip())
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and name not in _RESERVED | _DROPPED:
                document[name] = value
        if "order_id" not in document and (order_id := _order_id.get()) is not None:
            document["order_id"] = order_id
        if record.exc_info:
            document["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            document["exception"] = redact(record.exc_text)
        if record.stack_info:
            document["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The development format: one readable line, exception text masked as well."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))
