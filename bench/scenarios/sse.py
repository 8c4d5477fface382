"""``sse``: N concurrent order-status subscribers on one API process (default 2,000) and the
delay from a status change to its arrival at every subscriber.

Real orders are placed through ``POST /api/orders`` (each answer carries the order's lookup
token) and confirmed; N subscribers are spread over them round-robin, each a raw asyncio
connection to ``GET /api/orders/{id}/events`` with ``X-Order-Token`` (httpx would make the
client the bottleneck long before the server). A subscriber counts as connected when the
stream's first ``order.status`` event (the snapshot, sent after the subscription exists)
arrives. Then every order is moved ``confirmed -> preparing -> ready`` through
:func:`pickup.orders.transitions.change_status` in this process, the production path: the
change commits, is appended to the order's ``live:order:<id>`` Redis stream, and the API
process's live hub fans it out to its subscribers.

Per subscriber and change: the delay from the stream entry's creation (its id is Redis's
clock in milliseconds, the same host's clock as ours) to the arrival of the event's ``data``
line, and the delay from the start of the ``change_status`` call (which also sends the SNS
event through the emulator before publishing live). ``missed`` is expected deliveries (N x 2)
minus the ones that arrived: it must be 0.

There is no fair bare baseline (a bare fan-out would skip the authorisation, the snapshot,
the hub and the SSE framing that are the point), so instead of a ratio the scenario reports
the connection set-up rate and the API's RSS with N subscribers held.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from bench.context import Context
from bench.env import raise_nofile_limit
from bench.monitor import tree_rss
from bench.results import ScenarioResult, percentile
from bench.stock import plentiful_products, set_stock

NEEDS = ("api",)
SUBSCRIBERS = 2000
QUICK_SUBSCRIBERS = 100
ORDERS = 20
QUICK_ORDERS = 4
# Connections being set up at once. Each costs the API two order lookups in PostgreSQL; far
# more than its pool holds at once (10 + 5) makes it answer 503 after the pool timeout, which
# a browser's EventSource retries. The client retries the same way and counts the retries.
OPENING = 16
RETRIES = 5
CHANGES = ("preparing", "ready")
MIB = 1024 * 1024


def skip_reason(ctx: Context) -> str | None:
    return None


def api_nofile(pid: int) -> int | None:
    try:
        import psutil

        return int(psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE)[0])
    except Exception:
        return None


# --- the client ------------------------------------------------------------------------------


@dataclass
class Subscriber:
    order_id: str
    token: str
    setup_seconds: float | None = None
    error: str | None = None
    # status -> (stream entry id in ms, arrival time)
    arrivals: dict[str, tuple[int, float]] = field(default_factory=dict)
    duplicates: int = 0
    retries: int = 0


class Tally:
    """Counts arrivals per status and wakes whoever waits for all N of one status."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.connected = 0
        self.failed = 0
        self.counts: Counter[str] = Counter()
        self.all_connected = asyncio.Event()
        self.complete: dict[str, asyncio.Event] = {status: asyncio.Event() for status in CHANGES}

    def settled(self) -> None:
        if self.connected + self.failed >= self.expected:
            self.all_connected.set()

    def arrived(self, status: str) -> None:
        self.counts[status] += 1
        if status in self.complete and self.counts[status] >= self.expected - self.failed:
            self.complete[status].set()


async def hold(
    host: str,
    port: int,
    subscriber: Subscriber,
    tally: Tally,
    opening: asyncio.Semaphore,
    stop: asyncio.Event,
) -> None:
    """One subscriber: connect, read the snapshot (connected), then every event until stop."""
    writer: asyncio.StreamWriter | None = None
    released = False
    await opening.acquire()
    started = time.perf_counter()
    try:
        for attempt in range(RETRIES + 1):
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            writer.write(
                (
                    f"GET /api/orders/{subscriber.order_id}/events HTTP/1.1\r\n"
                    f"Host: {host}:{port}\r\nAccept: text/event-stream\r\n"
                    f"X-Order-Token: {subscriber.token}\r\n\r\n"
                ).encode()
            )
            status_line = await asyncio.wait_for(reader.readline(), 30)
            if b" 200 " in status_line:
                break
            writer.close()
            writer = None
            if b" 503 " not in status_line or attempt == RETRIES:
                raise RuntimeError(status_line.decode(errors="replace").strip() or "closed")
            subscriber.retries += 1
            await asyncio.sleep(1.0)
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        event_id: bytes | None = None
        event_type: bytes | None = None
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                if not released:
                    raise RuntimeError("closed before the snapshot")
                return
            if line.startswith(b"id: "):
                event_id = line[4:].strip()
            elif line.startswith(b"event: "):
                event_type = line[7:].strip()
            elif line.startswith(b"data: "):
                now = time.time()
                if event_type == b"order.status":
                    status = json.loads(line[6:])["status"]
                    if event_id is None:  # the snapshot: the subscription exists
                        if not released:
                            subscriber.setup_seconds = time.perf_counter() - started
                            released = True
                            opening.release()
                            tally.connected += 1
                            tally.settled()
                    elif status in subscriber.arrivals:
                        subscriber.duplicates += 1
                    else:
                        millis = int(event_id.split(b"-")[0])
                        subscriber.arrivals[status] = (millis, now)
                        tally.arrived(status)
                event_id = event_type = None
    except (OSError, RuntimeError, TimeoutError, ValueError, KeyError) as error:
        if not released:
            subscriber.error = f"{type(error).__name__}: {error}"[:120]
            tally.failed += 1
            tally.settled()
    finally:
        if not released:
            opening.release()
        if writer is not None:
            writer.close()


# --- orders and changes ---------------------------------------------------------------------


async def place_orders(base_url: str, products: list[str], count: int) -> list[tuple[str, str]]:
    """``count`` real orders through the API: (order id, lookup token) each."""
    placed: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def one(index: int) -> None:
            response = await client.post(
                "/api/orders",
                json={
                    "customer": {"name": "Bench Watcher", "email": "watch@example.com"},
                    "items": [{"product_id": products[index % len(products)], "quantity": 1}],
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            response.raise_for_status()
            body = response.json()
            placed.append((body["order_id"], body["lookup_token"]))

        semaphore = asyncio.Semaphore(4)

        async def bounded(index: int) -> None:
            async with semaphore:
                await one(index)

        await asyncio.gather(*(bounded(index) for index in range(count)))
    return placed


async def confirm_all(resources: object, order_ids: list[str]) -> None:
    """Every order CONFIRMED (the worker may be doing it already: whoever comes second
    finds it confirmed)."""
    from pickup.core.errors import Conflict
    from pickup.core.orders import Actor, OrderStatus
    from pickup.orders.transitions import change_status

    for order_id in order_ids:
        try:
            await change_status(
                resources,  # type: ignore[arg-type]
                uuid.UUID(order_id),
                OrderStatus.CONFIRMED,
                actor=Actor.SYSTEM,
            )
        except Conflict:
            pass


# --- the scenario ----------------------------------------------------------------------------


def run(ctx: Context) -> ScenarioResult:
    env = ctx.env
    soft, _hard = raise_nofile_limit()
    wanted = ctx.sse_subscribers or (QUICK_SUBSCRIBERS if ctx.quick else SUBSCRIBERS)
    api_limit = api_nofile(ctx.api.pid)
    # Leave room for the API's own sockets (PostgreSQL pool, Redis, AWS clients, files).
    ceiling = min(soft, api_limit or soft) - 200
    count = max(1, min(wanted, ceiling))
    orders = QUICK_ORDERS if ctx.quick else ORDERS
    products = plentiful_products(env, 8)
    set_stock(env, dict.fromkeys(products, 1_000_000))
    ctx.reset_rate_limits()
    url = urlsplit(ctx.api.url)
    host, port = url.hostname or "127.0.0.1", int(url.port or 80)
    rss_idle = tree_rss(ctx.api.pid)

    async def drive() -> dict[str, object]:
        from pickup.core.orders import Actor, OrderStatus
        from pickup.orders.transitions import change_status
        from pickup.runtime import Resources

        placed = await place_orders(ctx.api.url, products, orders)
        async with Resources.open(env.settings()) as resources:
            await confirm_all(resources, [order_id for order_id, _ in placed])
            subscribers = [Subscriber(*placed[index % len(placed)]) for index in range(count)]
            tally = Tally(count)
            opening = asyncio.Semaphore(OPENING)
            stop = asyncio.Event()
            began = time.perf_counter()
            tasks = [
                asyncio.create_task(hold(host, port, sub, tally, opening, stop))
                for sub in subscribers
            ]
            await asyncio.wait_for(tally.all_connected.wait(), 300)
            setup_seconds = time.perf_counter() - began
            ctx.monitor.sample()
            rss_held = tree_rss(ctx.api.pid)
            called: dict[tuple[str, str], float] = {}
            change_seconds: list[float] = []
            timed_out: list[str] = []
            for status in CHANGES:
                for order_id, _token in placed:
                    called[(order_id, status)] = time.time()
                    started = time.perf_counter()
                    await change_status(
                        resources, uuid.UUID(order_id), OrderStatus(status), actor=Actor.STAFF
                    )
                    change_seconds.append(time.perf_counter() - started)
                try:
                    await asyncio.wait_for(tally.complete[status].wait(), 30)
                except TimeoutError:
                    timed_out.append(status)
            ctx.monitor.sample()
            rss_after = tree_rss(ctx.api.pid)
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "subscribers": subscribers,
            "tally": tally,
            "setup_seconds": setup_seconds,
            "rss_held": rss_held,
            "rss_after": rss_after,
            "called": called,
            "change_seconds": change_seconds,
            "timed_out": timed_out,
        }

    outcome = asyncio.run(drive())
    subscribers: list[Subscriber] = outcome["subscribers"]  # type: ignore[assignment]
    tally: Tally = outcome["tally"]  # type: ignore[assignment]
    called: dict[tuple[str, str], float] = outcome["called"]  # type: ignore[assignment]
    from_publish: list[float] = []
    from_call: list[float] = []
    for sub in subscribers:
        for status, (millis, arrival) in sub.arrivals.items():
            from_publish.append(max(0.0, arrival - millis / 1000))
            from_call.append(arrival - called[(sub.order_id, status)])
    expected = count * len(CHANGES)
    delivered = len(from_publish)
    missed = expected - delivered
    connected = tally.connected
    setup_seconds: float = outcome["setup_seconds"]  # type: ignore[assignment]
    setups = [sub.setup_seconds for sub in subscribers if sub.setup_seconds is not None]
    errors = Counter(sub.error for sub in subscribers if sub.error)
    result = ScenarioResult(
        name="sse",
        unit="subscribers",
        value=connected,
        p50_ms=percentile(from_publish, 50),
        p95_ms=percentile(from_publish, 95),
        p99_ms=percentile(from_publish, 99),
        errors=tally.failed,
        baseline=None,
        baseline_what=(
            "none: no fair bare fan-out exists; set-up rate and API RSS at N are reported"
        ),
        goal=f"{count} held, missed 0",
        details={
            "subscribers_wanted": wanted,
            "subscribers": count,
            "connected": connected,
            "orders": len({sub.order_id for sub in subscribers}),
            "changes": len(called),
            "expected": expected,
            "delivered": delivered,
            "missed": missed,
            "missed_by_connected": connected * len(CHANGES) - delivered,
            "duplicates": sum(sub.duplicates for sub in subscribers),
            "setup_retries_after_503": sum(sub.retries for sub in subscribers),
            "delay_max_ms": max(from_publish, default=0.0) * 1000 if from_publish else None,
            "from_call_p50_ms": percentile(from_call, 50),
            "from_call_p99_ms": percentile(from_call, 99),
            "from_call_max_ms": max(from_call) * 1000 if from_call else None,
            "change_status_p50_ms": percentile(outcome["change_seconds"], 50),  # type: ignore[arg-type]
            "setup_seconds": round(setup_seconds, 2),
            "setup_per_second": round(connected / setup_seconds, 1) if setup_seconds else None,
            "setup_p50_ms": percentile(setups, 50),
            "setup_p99_ms": percentile(setups, 99),
            "api_rss_idle_mib": round(rss_idle / MIB, 1),
            "api_rss_held_mib": round(outcome["rss_held"] / MIB, 1),  # type: ignore[operator]
            "api_rss_after_events_mib": round(outcome["rss_after"] / MIB, 1),  # type: ignore[operator]
            "api_kib_per_subscriber": round(
                (outcome["rss_held"] - rss_idle) / 1024 / max(connected, 1),
                1,  # type: ignore[operator]
            ),
            "client_nofile": soft,
            "api_nofile": api_limit,
            "timed_out": outcome["timed_out"],
            "connection_errors": dict(errors.most_common(5)),
        },
    )
    result.passed = connected == count and missed == 0
    return result
