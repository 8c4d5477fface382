"""Distributed tracing with OpenTelemetry: one trace from the checkout to the customer's email.

Off unless ``PICKUP_TRACING_ENABLED=true`` (and ``OTEL_SDK_DISABLED`` is not ``true``). Off,
nothing is imported beyond this module, no provider is installed and nothing is instrumented:
every helper here is a no-op. On, :func:`configure_tracing` installs an SDK tracer provider
and instruments SQLAlchemy engines (:func:`instrument_engine`), Redis, aiobotocore (every
AWS call is a CLIENT span, from ``opentelemetry-instrumentation-botocore``'s
``AiobotocoreInstrumentor``) and FastAPI apps (:func:`instrument_app`). The SDK reads the
standard variables itself: the sampler (``OTEL_TRACES_SAMPLER[_ARG]``), the exporter's
endpoint, headers and timeout (``OTEL_EXPORTER_OTLP_*``), batching (``OTEL_BSP_*``), extra
resource attributes and the service name (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``,
which win over ours) and the propagators (``OTEL_PROPAGATORS``, W3C trace context by default).
``OTEL_TRACES_EXPORTER`` chooses the exporter: ``otlp`` (the default; OTLP over HTTP/protobuf,
the only OTLP transport shipped), ``console`` or ``none``.

Across the queues the context travels in message attributes (``traceparent``/``tracestate``):
:func:`current_context` is stored with an outbox row when it is written (the relay sends it
later, from another task), :func:`publishing` is the PRODUCER span of the relay's send, whose
parent is that stored context and whose own context goes out with the message, and
:func:`consuming` is the CONSUMER span a queue handler runs in, whose parent is the context the
message carried. SNS's raw message delivery turns the attributes of an event into the SQS
attributes the notifier receives, so one trace goes checkout -> worker -> notifier -> SES.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

    from pickup.messaging.consumer import Message
    from pickup.settings import Settings

logger = logging.getLogger("pickup.tracing")

MAX_MESSAGE_ATTRIBUTES = 10  # SQS and SNS accept at most ten attributes per message
# Not traced: probes and scrapes every few seconds, and static files.
EXCLUDED_URLS = "/healthz,/readyz,/metrics,/static/"


@dataclass
class _Tracing:
    provider: TracerProvider
    tracer: Tracer
    service_name: str
    instrumentors: list[Any] = field(default_factory=list)
    engine_tracers: list[Any] = field(default_factory=list)


_state: _Tracing | None = None


def tracing_wanted(settings: Settings) -> bool:
    """Whether ``settings`` and the environment ask for tracing (``OTEL_SDK_DISABLED`` wins)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(settings.tracing_enabled)


def active() -> bool:
    """Whether tracing is configured in this process."""
    return _state is not None


def configure_tracing(
    settings: Settings, service_name: str, *, exporter: SpanExporter | None = None
) -> bool:
    """Install the tracer provider and the instrumentation, once per process; True if on.

    ``service_name`` names the process (``pickup-api``, ``pickup-worker``...); the first call
    wins, so the all-in-one development process is one service. ``exporter`` replaces the one
    ``OTEL_TRACES_EXPORTER`` names and exports each span as it ends (tests).

    The provider is handed to each instrumentation and never made the process's global one:
    FastAPI 0.165+ traces every app by itself once a global provider exists, which would trace
    the workers' health probes and metric scrapes too, and a global provider can be set only
    once per process (a test could not shut tracing down again).
    """
    global _state
    if _state is not None:
        return True
    if not tracing_wanted(settings):
        return False

    from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    import pickup

    ours = Resource.create(
        {
            "service.name": service_name,
            "service.namespace": "pickup",
            "service.version": pickup.__version__,
            "deployment.environment.name": settings.env.value,
            "pickup.resource_prefix": settings.resource_prefix,
        }
    )
    # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win over the defaults above.
    provider = TracerProvider(resource=ours.merge(OTELResourceDetector().detect()))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for configured in _exporters_from_environment():
            provider.add_span_processor(BatchSpanProcessor(configured))

    state = _Tracing(provider, provider.get_tracer("pickup"), service_name)
    for instrumentor in (RedisInstrumentor(), AiobotocoreInstrumentor()):
        instrumentor.instrument(tracer_provider=provider)
        state.instrumentors.append(instrumentor)
    _state = state
    logger.info("tracing.configured service=%s", service_name)
    return True


def shutdown_tracing() -> None:
    """Flush the spans, remove the instrumentation; the process is as if never configured."""
    global _state
    state, _state = _state, None
    if state is None:
        return
    for engine_tracer in state.engine_tracers:
        engine_tracer.remove_all_event_listeners()
    for instrumentor in state.instrumentors:
        instrumentor.uninstrument()
    state.provider.shutdown()


def _exporters_from_environment() -> list[SpanExporter]:
    from importlib.metadata import entry_points

    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    exporters: list[SpanExporter] = []
    for name in (part.strip().lower() for part in names.split(",")):
        if not name or name == "none":
            continue
        if name == "otlp":
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            if protocol != "http/protobuf":
                logger.warning(
                    "tracing.otlp_protocol_unsupported protocol=%s (using http/protobuf)", protocol
                )
            name = "otlp_proto_http"
        found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
        if not found:
            logger.warning("tracing.unknown_exporter name=%s", name)
            continue
        exporters.append(found[0].load()())
    return exporters


def instrument_app(app: FastAPI) -> None:
    """Trace ``app``'s requests (SERVER spans), except probes, scrapes and static files."""
    if _state is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_state.provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],  # one span per ASGI message is noise
    )


def instrument_engine(engine: AsyncEngine) -> None:
    """Trace the statements ``engine`` runs.

    The SQLAlchemy instrumentor patches ``create_async_engine`` where SQLAlchemy defines it,
    which misses a name imported before it ran; tracing the engine itself always works.
    """
    if _state is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    meter = get_meter("opentelemetry.instrumentation.sqlalchemy", __version__)
    usage = meter.create_up_down_counter("db.client.connections.usage", unit="connections")
    tracer = _state.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
    _state.engine_tracers.append(EngineTracer(tracer, engine.sync_engine, usage))


# --- Context across the queues -------------------------------------------------------------


def current_context() -> dict[str, str]:
    """The active span's W3C trace context (``traceparent``, ``tracestate``), or nothing."""
    if _state is None:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def _fits(attributes: Mapping[str, Any]) -> bool:
    from opentelemetry import propagate

    fields = propagate.get_global_textmap().fields
    return len(set(attributes) | set(fields)) <= MAX_MESSAGE_ATTRIBUTES


@contextlib.contextmanager
def publishing(
    *, system: str, destination: str, message_type: str, stored: Mapping[str, Any]
) -> Iterator[dict[str, str]]:
    """A PRODUCER span for sending one message, child of the context ``stored`` with it.

    Yields the trace context to send with the message (empty when tracing is off, or when
    the message has too many attributes to carry it).
    """
    if _state is None:
        yield {}
        return
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    parent = propagate.extract({key: str(value) for key, value in stored.items()})
    with (
        _traced_again(),
        _state.tracer.start_as_current_span(
            f"{destination} publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": system,
                "messaging.operation.type": "send",
                "messaging.destination.name": destination,
                "pickup.message_type": message_type,
            },
        ),
    ):
        carrier: dict[str, str] = {}
        if _fits(stored):
            propagate.inject(carrier)
        else:
            logger.warning(
                "tracing.context_dropped destination=%s reason=too_many_attributes", destination
            )
        yield carrier


@contextlib.contextmanager
def consuming(message: Message, queue: str) -> Iterator[None]:
    """The CONSUMER span a handler runs in; its parent is the context ``message`` carried."""
    if _state is None:
        yield
        return
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    with (
        _traced_again(),
        _state.tracer.start_as_current_span(
            f"{queue} process",
            context=propagate.extract(message.attributes),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "aws_sqs",
                "messaging.operation.type": "process",
                "messaging.destination.name": queue,
                "messaging.message.id": message.id,
                "pickup.receive_count": message.receive_count,
                "pickup.message_type": message.attributes.get("event_type", ""),
            },
        ),
    ):
        yield


def record_outcome(outcome: str) -> None:
    """Note how the handler went (ack, retry, poison, error) on the current CONSUMER span."""
    if _state is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import StatusCode

    current = trace.get_current_span()
    current.set_attribute("pickup.outcome", outcome)
    if outcome in {"poison", "error"}:
        current.set_status(StatusCode.ERROR, outcome)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No instrumentation spans inside (tasks started inside inherit it): idle polling.

    Background loops (consumers' long polls, the relay's and the sweeper's passes, the stream
    consumer's reads) would otherwise start a trace of their own every few seconds. The work
    done for a message (:func:`consuming`, :func:`publishing`) is traced again.
    """
    if _state is None:
        yield
        return
    from opentelemetry import context

    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


@contextlib.contextmanager
def _traced_again() -> Iterator[None]:
    """Instrumentation on again inside: the work done for one message in a :func:`quiet` loop.

    (It must be the current context: a span started with ``context=`` takes only its parent
    from there, and its children see the current context.)
    """
    from opentelemetry import context

    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, False))
    try:
        yield
    finally:
        context.detach(token)


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, str | int | float | bool] | None = None
) -> Iterator[None]:
    """An INTERNAL span around a step worth seeing in a trace (a notification's send)."""
    if _state is None:
        yield
        return
    with _state.tracer.start_as_current_span(name, attributes=dict(attributes or {})):
        yield
