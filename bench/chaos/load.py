"""Steady checkout load that behaves like a careful client, and remembers every answer.

A new order starts every ``1 / rate`` seconds, each with an Idempotency-Key of its own. An
order is retried with the *same* key while the answer says "try again": a 503/502/500/429, a
409 "in progress", or no HTTP answer at all (refused, reset, timed out). Any other answer is
final: 202 (accepted) or a refusal (409 out of stock, 422 ...). Every HTTP answer is kept
with whether it was a proper problem document (``application/problem+json`` with ``type``
and ``title``), so the reconciliation can check that every refusal was a clear one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PROBLEM = "application/problem+json"
RETRIED = {429, 500, 502, 503, 504}
CUSTOMER_NAME = "Chaos Shopper"


@dataclass(frozen=True)
class Answer:
    at: float  # seconds since the load started
    key: str
    status: int | None  # None: no HTTP answer
    kind: str  # "accepted", "replayed", a problem type's last segment, or the error's name
    problem_ok: bool | None  # for a non-2xx answer: a problem document with type and title


@dataclass
class Order:
    key: str
    lines: list[tuple[str, int]]
    started: float
    order_id: str | None = None
    code: str | None = None
    final: str | None = None  # "accepted", a refusal kind, or "abandoned"
    attempts: int = 0


@dataclass
class CheckoutLoad:
    base_url: Callable[[], str]
    products: list[str]
    rate: float = 4.0
    lines_per_order: int = 2
    request_timeout: float = 10.0
    # Requests in flight at once, over all orders: clients that retried without a bound
    # turned a slow API into a retry storm (thousands of pool timeouts on our side).
    max_in_flight: int = 16
    answers: list[Answer] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    _started: float = field(default_factory=time.monotonic)
    _rng: random.Random = field(default_factory=lambda: random.Random(7))  # noqa: S311
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))

    @property
    def accepted(self) -> dict[str, Order]:
        return {o.order_id: o for o in self.orders if o.order_id is not None}

    def now(self) -> float:
        return time.monotonic() - self._started

    def kinds(self) -> Counter[str]:
        """Answers by kind, non-2xx only ("refused" answers, including retried ones)."""
        return Counter(
            f"{a.status or 'no answer'} {a.kind}" for a in self.answers if a.kind != "accepted"
        )

    async def run(self, placing: asyncio.Event, settled_by: Callable[[], float]) -> None:
        """Start orders while ``placing`` is set; return when every order is final or it is
        ``settled_by()`` (a monotonic deadline, read as it moves)."""
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=16)
        self._slots = asyncio.Semaphore(self.max_in_flight)
        async with httpx.AsyncClient(timeout=self.request_timeout, limits=limits) as client:
            tasks: list[asyncio.Task[None]] = []
            interval = 1.0 / self.rate
            next_start = time.monotonic()
            while placing.is_set():
                tasks.append(asyncio.create_task(self._order(client, settled_by)))
                next_start += interval
                await asyncio.sleep(max(0.0, next_start - time.monotonic()))
            if tasks:
                await asyncio.gather(*tasks)

    async def _order(self, client: httpx.AsyncClient, settled_by: Callable[[], float]) -> None:
        picked = self._rng.sample(self.products, self.lines_per_order)
        order = Order(str(uuid.uuid4()), [(pid, 1) for pid in picked], self.now())
        self.orders.append(order)
        body = {
            "customer": {"name": CUSTOMER_NAME, "email": f"chaos+{order.key[:8]}@example.com"},
            "items": [{"product_id": pid, "quantity": q} for pid, q in order.lines],
        }
        delay = 0.5
        while time.monotonic() < settled_by():
            order.attempts += 1
            async with self._slots:
                retry_after = await self._attempt(client, order, body)
            if order.final is not None:
                return
            await asyncio.sleep(min(max(retry_after or delay, 0.2), 3.0))
            delay = min(delay * 2, 3.0)
        order.final = "abandoned"

    async def _attempt(self, client: httpx.AsyncClient, order: Order, body: dict[str, Any]):
        try:
            response = await client.post(
                self.base_url() + "/api/orders",
                json=body,
                headers={"Idempotency-Key": order.key},
            )
        except httpx.HTTPError as error:
            self.answers.append(Answer(self.now(), order.key, None, type(error).__name__, None))
            return None
        status = response.status_code
        if status == 202:
            data = response.json()
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            kind = "replayed" if replayed else "accepted"
            self.answers.append(Answer(self.now(), order.key, status, kind, None))
            order.order_id, order.code, order.final = data["order_id"], data["code"], "accepted"
            return None
        problem_ok, kind = _problem(response)
        self.answers.append(Answer(self.now(), order.key, status, kind, problem_ok))
        if status in RETRIED or kind == "idempotency-key-in-progress":
            with contextlib.suppress(ValueError):
                return float(response.headers.get("Retry-After", ""))
            return None
        order.final = kind
        return None


def _problem(response: httpx.Response) -> tuple[bool, str]:
    if not response.headers.get("content-type", "").startswith(PROBLEM):
        return False, f"not-a-problem ({response.headers.get('content-type', 'no type')})"
    try:
        data = response.json()
    except ValueError:
        return False, "unreadable-problem"
    kind = str(data.get("type") or "").rstrip("/").rsplit("/", 1)[-1] or "untyped"
    return bool(data.get("type") and data.get("title")), kind
