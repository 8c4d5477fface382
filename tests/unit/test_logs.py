"""Structured logs: the JSON fields, trace ids from the active span, masked contact details."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from pickup.cli.common import access_log, log_format, logging_config
from pickup.observability.logs import JsonFormatter, RedactingFilter, order_context, redact
from tests.helpers import offline_settings


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, Callable[[], list[dict[str, Any]]]]]:
    """A logger writing through the JSON formatter and the redaction filter into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"pickup.test.{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)

    def records() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield logger, records
    logger.removeHandler(handler)


def test_a_record_is_one_json_object_with_its_event_and_fields(capture: Any) -> None:
    logger, records = capture
    logger.warning("order.confirmed order_id=%s queue_ahead=%s reason=%s", "o-1", 3, "a b c")
    [record] = records()
    assert record["level"] == "WARNING"
    assert record["event"] == "order.confirmed"
    assert record["message"] == "order.confirmed order_id=o-1 queue_ahead=3 reason=a b c"
    assert record["logger"] == logger.name
    assert (record["order_id"], record["queue_ahead"], record["reason"]) == ("o-1", "3", "a b c")
    stamp = datetime.fromisoformat(record["timestamp"])
    assert record["timestamp"].endswith("Z")
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)
    assert "trace_id" not in record and "span_id" not in record


def test_a_message_without_an_event_key_is_named_after_its_logger(capture: Any) -> None:
    logger, records = capture
    logger.info("Started server process [%d]", 42)
    [record] = records()
    assert record["event"] == logger.name
    assert record["message"] == "Started server process [42]"


def test_extra_fields_and_the_exception_are_kept(capture: Any) -> None:
    logger, records = capture
    try:
        raise ValueError("the kitchen is on fire")
    except ValueError:
        logger.exception("queue.handler_failed queue=orders", extra={"attempt": 2})
    [record] = records()
    assert record["attempt"] == 2
    assert record["queue"] == "orders"
    assert "ValueError: the kitchen is on fire" in record["exception"]
    assert record["exception"].startswith("Traceback")


def test_the_active_span_gives_trace_and_span_ids(capture: Any) -> None:
    logger, records = capture
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("checkout") as span:
        logger.info("order.placed order_id=%s", "o-2")
    context = span.get_span_context()
    [record] = records()
    assert record["trace_id"] == format(context.trace_id, "032x")
    assert record["span_id"] == format(context.span_id, "016x")


def test_the_order_context_names_the_order_on_every_record_inside_it(capture: Any) -> None:
    logger, records = capture
    order_id = uuid.uuid4()
    with order_context(order_id):
        logger.info("inventory.reserved lines=%s", 2)
        logger.info("outbox.sent order_id=%s", "explicit")
        logger.info("notification.sent order_id=%s", None)
    logger.info("outbox.idle order_id=%s", None)
    inside, explicit, unknown, outside = records()
    assert inside["order_id"] == str(order_id)
    assert explicit["order_id"] == "explicit"  # what the call says wins
    assert unknown["order_id"] == str(order_id)  # a call that does not know keeps the context's
    assert "order_id" not in outside


def test_emails_and_phone_numbers_are_masked_in_message_fields_and_exceptions(
    capture: Any,
) -> None:
    logger, records = capture
    try:
        raise RuntimeError("SES refused jane.doe@example.com")
    except RuntimeError:
        logger.exception(
            "notification.failed key=%s phone=%s",
            "order.confirmed:o-3:email:jane.doe@example.com",
            "+447700900123",
            extra={"recipients": ["bob@shop.example", "+44 7700 900 999"]},
        )
    [record] = records()
    text = json.dumps(record)
    for secret in ("jane.doe@", "bob@", "7700900123", "7700 900 999"):
        assert secret not in text
    assert record["key"] == "order.confirmed:o-3:email:j***@example.com"
    assert record["phone"] == "+44******0123"
    assert record["recipients"] == ["b***@shop.example", "+44******0999"]
    assert "RuntimeError: SES refused j***@example.com" in record["exception"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to a@b.co", "to a***@b.co"),
        ("+14155550123 called", "+14*****0123 called"),
        (
            "order 3f2a9c1e-1234-4567-8901-234567890123",
            "order 3f2a9c1e-1234-4567-8901-234567890123",
        ),
        (
            "at 2026-11-25T18:00:00+00:00 took 12345678 ms",
            "at 2026-11-25T18:00:00+00:00 took 12345678 ms",
        ),
        ("user@localhost", "user@localhost"),
    ],
)
def test_masking_touches_contact_details_only(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_the_format_is_text_in_development_and_json_elsewhere() -> None:
    assert log_format(offline_settings(env="development")) == "text"
    assert log_format(offline_settings(env="test")) == "json"
    assert log_format(offline_settings(env="development", log_format="json")) == "json"
    assert access_log(offline_settings(env="development")) is True
    assert access_log(offline_settings(env="test")) is False


def test_uvicorn_lines_go_through_the_same_json_handler(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logging.config.dictConfig(logging_config(offline_settings(log_level="INFO")))
        logging.getLogger("uvicorn.error").info(
            "Application startup complete.", extra={"color_message": "\x1b[1mApplication\x1b[0m"}
        )
        logging.getLogger("pickup.orders").info("order.placed email=%s", "ada@example.com")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["uvicorn.error", "order.placed"]
    assert lines[1]["email"] == "a***@example.com"
    assert "color_message" not in lines[0]  # uvicorn's coloured copy of the message
