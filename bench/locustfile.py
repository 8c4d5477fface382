"""The lunch rush (Locust, run by bench/scenarios/rush.py as ``locust --headless``).

Shoppers browse the menu, look at products, fill a cart (often with the hot product, whose
stock runs out mid-run) and check out; after a checkout they poll their order's status.
Weighted like real shoppers: most visits browse, fewer buy. Sold-out answers (409) are the
expected handling and count as successes; anything else that is not 2xx/3xx is a failure.

Settings come from the environment: BENCH_HOT (the hot product), BENCH_PRODUCTS (the others),
BENCH_RUSH_OUT (where the summary JSON goes at the end).
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from typing import Any

from locust import FastHttpUser, between, events, task

HOT = os.environ.get("BENCH_HOT", "almond-croissant")
PRODUCTS = [p for p in os.environ.get("BENCH_PRODUCTS", "espresso").split(",") if p]
OUT = os.environ.get("BENCH_RUSH_OUT")
POLLS = 3

STATE: dict[str, Any] = {
    "latencies_ms": [],
    "failures": Counter(),
    "statuses": Counter(),
    "accepted": {},
    "sold_out_409": Counter(),
    "first_sold_out": None,
    "started": None,
    "checkouts": 0,
    "polls": 0,
    "statuses_seen": Counter(),
}


@events.test_start.add_listener
def _start(**_kwargs: Any) -> None:
    STATE["started"] = time.monotonic()


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response: Any,
    exception: Any,
    **_kwargs: Any,
) -> None:
    STATE["latencies_ms"].append(response_time)
    status = getattr(response, "status_code", 0)
    STATE["statuses"][status] += 1
    if exception is not None:
        STATE["failures"][f"{name} {type(exception).__name__}: {str(exception)[:80]}"] += 1


@events.test_stop.add_listener
def _stop(**_kwargs: Any) -> None:
    if not OUT:
        return
    summary = {
        **STATE,
        "seconds": time.monotonic() - (STATE["started"] or time.monotonic()),
        "failures": dict(STATE["failures"]),
        "statuses": {str(k): v for k, v in STATE["statuses"].items()},
        "sold_out_409": dict(STATE["sold_out_409"]),
        "statuses_seen": dict(STATE["statuses_seen"]),
    }
    with open(OUT, "w") as handle:
        json.dump(summary, handle)


def _sold_out(where: str) -> None:
    STATE["sold_out_409"][where] += 1
    if STATE["first_sold_out"] is None and STATE["started"] is not None:
        STATE["first_sold_out"] = time.monotonic() - STATE["started"]


class Shopper(FastHttpUser):
    wait_time = between(0.3, 1.2)

    @task(10)
    def browse(self) -> None:
        self.client.get("/api/menu", name="GET /api/menu")

    @task(3)
    def look(self) -> None:
        product = random.choice([HOT, *PRODUCTS])  # noqa: S311
        self.client.get(f"/api/menu/{product}", name="GET /api/menu/{id}")

    @task(4)
    def buy(self) -> None:
        self.client.get("/api/menu", name="GET /api/menu")
        token = None
        wanted = random.sample(PRODUCTS, random.randint(1, 2))  # noqa: S311
        if random.random() < 0.7:  # noqa: S311 (most want the hot product)
            wanted.insert(0, HOT)
        for product in wanted:
            headers = {"X-Cart-Token": token} if token else {}
            with self.client.post(
                "/api/cart/add",
                json={"product_id": product, "quantity": 1},
                headers=headers,
                name="POST /api/cart/add",
                catch_response=True,
            ) as response:
                if response.status_code == 409:
                    _sold_out("cart")
                    response.success()
                elif response.status_code == 200:
                    token = response.headers.get("X-Cart-Token") or token
        if token is None:
            return
        with self.client.post(
            "/api/orders",
            json={"customer": {"name": "Rush Shopper", "email": "rush@example.com"}},
            headers={"X-Cart-Token": token, "Idempotency-Key": str(uuid.uuid4())},
            name="POST /api/orders",
            catch_response=True,
        ) as response:
            STATE["checkouts"] += 1
            if response.status_code == 409:
                _sold_out("checkout")
                response.success()
                return
            if response.status_code != 202:
                return
            body = response.json()
            order_id = body["order_id"]
            STATE["accepted"][order_id] = [
                [item["product_id"], item["quantity"]] for item in body["items"]
            ]
        for _ in range(POLLS):
            time.sleep(0.5)
            with self.client.get(
                f"/api/orders/status/{order_id}",
                name="GET /api/orders/status/{id}",
                catch_response=True,
            ) as response:
                STATE["polls"] += 1
                if response.status_code == 200:
                    STATE["statuses_seen"][response.json().get("status")] += 1
