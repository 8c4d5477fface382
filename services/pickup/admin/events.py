"""Server-Sent Events: the staff board's stream and one customer's order stream.

Both read the ``live:*`` Redis streams through the process's :class:`LiveHub`. A client that
reconnects with ``Last-Event-ID`` first gets what it missed from the stream's history (or a
``resync`` event when part of it was trimmed), then live events; a comment line goes out every
``sse_heartbeat_seconds`` so proxies keep the connection open and a vanished client is noticed.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from pickup import live
from pickup.admin.live_hub import EVENT_ID, LiveEvent, LiveHub, Subscription, event_key
from pickup.api.deps import ResourcesDep
from pickup.api.problems import problem_responses
from pickup.core.errors import ServiceUnavailable
from pickup.core.orders import OrderStatus
from pickup.orders import repository as orders_repository
from pickup.orders.service import OrderNotFound, hash_token, status_view
from pickup.orders.status import describe
from pickup.staff.auth import StaffDep

RETRY_MS = 3000
# What a customer's stream may carry: where the order stands and when it will be ready.
CUSTOMER_FIELDS = ("order_id", "status", "pickup_at", "estimated_ready_at")


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of Server-Sent Events (text/event-stream)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=EVENT_ID.pattern,
        max_length=41,
        description="the id of the last event received; what came after it is replayed",
    ),
]

staff_router = APIRouter(prefix="/api/admin", tags=["staff live updates"])
customer_router = APIRouter(prefix="/api/orders", tags=["orders"])


def get_hub(request: Request) -> LiveHub:
    return request.app.state.live_hub


def format_event(event_type: str, data: str, event_id: str | None = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event_type}")
    lines.append(f"data: {data}")
    return "\n".join(lines) + "\n\n"


async def event_stream(
    subscription: Subscription,
    backlog: list[LiveEvent],
    *,
    heartbeat: float,
    first: list[str] | None = None,
    transform: Callable[[LiveEvent], str | None] = lambda event: event.data,
) -> AsyncIterator[str]:
    """Replayed events, then live ones, each once and in stream order, with heartbeats.

    The subscription ends (and stops being fed) however the response ends: the client going
    away cancels this generator, and ``finally`` releases it.
    """
    last: tuple[int, int] | None = None
    try:
        yield f"retry: {RETRY_MS}\n\n"
        for chunk in first or []:
            yield chunk
        for event in backlog:
            data = transform(event)
            if data is not None:
                yield format_event(event.type, data, event.id)
            last = event_key(event.id)
        while True:
            try:
                event = await subscription.next(heartbeat)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if event is None:
                return  # closed: the client reconnects and replays what it missed
            if last is not None and event_key(event.id) <= last:
                continue  # already sent from the replay
            last = event_key(event.id)
            data = transform(event)
            if data is not None:
                yield format_event(event.type, data, event.id)
    finally:
        subscription.close()


async def open_stream(
    hub: LiveHub,
    topic: str,
    last_event_id: str | None,
    *,
    history: int,
    heartbeat: float,
    first: Callable[[], Awaitable[list[str]]] | None = None,
    transform: Callable[[LiveEvent], str | None] | None = None,
) -> EventStreamResponse:
    """Subscribe, then take the first events (``first``: a snapshot, which may also refuse
    the stream by raising) and the replay: a change made meanwhile arrives live (perhaps
    twice, never not at all)."""
    try:
        subscription = await hub.subscribe(topic)
    except ServiceUnavailable:
        if first is not None:
            await first()  # its own refusal (a wrong token's 404) comes before the outage
        raise
    backlog: list[LiveEvent] = []
    chunks: list[str] = []
    try:
        if first is not None:
            chunks.extend(await first())
        if last_event_id is not None:
            backlog, gap = await hub.replay(topic, last_event_id, history)
            if gap:
                chunks.append(format_event("resync", '{"reason":"history-trimmed"}'))
    except BaseException:
        subscription.close()
        raise
    options: dict[str, Any] = {"heartbeat": heartbeat, "first": chunks}
    if transform is not None:
        options["transform"] = transform
    return EventStreamResponse(
        event_stream(subscription, backlog, **options), headers=STREAM_HEADERS
    )


@staff_router.get(
    "/events",
    response_class=EventStreamResponse,
    summary="Live events for staff: new orders, status changes, stock changes, alerts",
    responses={**STREAM_RESPONSES, **problem_responses(401, 403, 422, 503)},
)
async def staff_events(
    _staff: StaffDep,
    request: Request,
    resources: ResourcesDep,
    last_event_id: LastEventId = None,
) -> EventStreamResponse:
    settings = resources.settings
    return await open_stream(
        get_hub(request),
        live.STAFF,
        last_event_id,
        history=settings.live_history_size,
        heartbeat=settings.sse_heartbeat_seconds,
    )


def customer_view(event: LiveEvent) -> str | None:
    """The public part of an order event: status and times, never personal data."""
    try:
        data = json.loads(event.data)
        status = OrderStatus(data["status"])
    except (ValueError, KeyError, TypeError):
        return None
    view = {key: data.get(key) for key in CUSTOMER_FIELDS}
    label, message, final = describe(status)
    view.update(label=label, message=message, final=final)
    return json.dumps(view, separators=(",", ":"))


@customer_router.get(
    "/{order_id}/events",
    response_class=EventStreamResponse,
    summary="Live status of one order (its status and estimated time; no personal data)",
    responses={**STREAM_RESPONSES, **problem_responses(404, 422, 503)},
)
async def order_events(
    order_id: uuid.UUID,
    request: Request,
    resources: ResourcesDep,
    x_order_token: Annotated[
        str | None, Header(max_length=128, description="the lookup token from checkout")
    ] = None,
    token: Annotated[
        str | None,
        Query(max_length=128, description="the lookup token (EventSource cannot set headers)"),
    ] = None,
    last_event_id: LastEventId = None,
) -> EventStreamResponse:
    given = x_order_token or token
    not_found = OrderNotFound(f"There is no order {order_id}, or the lookup token does not match.")
    if not given:
        raise not_found
    detail = "Order status is unavailable right now. Please try again in a moment."

    async def first() -> list[str]:
        # One lookup, after subscribing: it authorises the stream and is the snapshot a fresh
        # page starts from (a reconnect replays instead), so a change committed before it is
        # in the snapshot and one committed after it arrives live.
        async with orders_repository.database_errors(detail), resources.sessions() as session:
            order = await orders_repository.get_order(session, order_id)
        if order is None or not hmac.compare_digest(order.lookup_token_hash, hash_token(given)):
            raise not_found
        if last_event_id is not None:
            return []
        data = customer_view(
            LiveEvent(id="0-0", type="order.status", data=status_view(order).model_dump_json())
        )
        return [] if data is None else [format_event("order.status", data)]

    settings = resources.settings
    return await open_stream(
        get_hub(request),
        live.order_topic(order_id),
        last_event_id,
        history=settings.live_history_size,
        heartbeat=settings.sse_heartbeat_seconds,
        first=first,
        transform=customer_view,
    )
