"""`pickup dev` runs the pipeline in-process: an order placed there is confirmed by the worker
and its confirmation email appears in the development outbox within seconds."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest


def request(url: str, body: dict[str, Any] | None = None, **headers: str) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    outgoing = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    outgoing.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        outgoing.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(outgoing, timeout=10) as response:
            raw = response.read()
            kind = response.headers.get("content-type", "")
            return response.status, json.loads(raw) if "json" in kind else raw.decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {seconds:.0f} s")


def test_an_order_placed_in_dev_is_confirmed_and_emailed_within_seconds(dev_server) -> None:
    process, base = dev_server
    status, menu = request(base + "/api/menu")
    assert status == 200
    product = next(
        item
        for category in menu["categories"]
        for item in category["products"]
        if item["stock"]["status"] == "in_stock"
    )
    email = f"dev-{uuid.uuid4().hex[:6]}@example.com"
    status, accepted = request(
        base + "/api/orders",
        {
            "customer": {"name": "Grace Hopper", "email": email},
            "items": [{"product_id": product["id"], "quantity": 1}],
        },
        Idempotency_Key=str(uuid.uuid4()),
    )
    assert status == 202, accepted
    placed_at = time.monotonic()

    def confirmed() -> bool:
        return request(base + accepted["status_url"])[1]["status"] == "confirmed"

    wait_for(confirmed, 15, "the confirmation")

    def emailed() -> dict[str, Any] | None:
        messages = request(base + "/dev/outbox.json")[1]["messages"]
        return next((m for m in messages if m["to"] == email), None)

    message = wait_for(emailed, 15, "the confirmation email")
    assert time.monotonic() - placed_at < 15
    assert message["channel"] == "email"
    assert message["subject"].startswith(f"Order {accepted['code']} confirmed")
    assert product["name"] in message["text"]
    status, page = request(base + "/dev/outbox")
    assert status == 200 and message["subject"] in page

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "dev outbox   " + base + "/dev/outbox" in output
    assert "Traceback" not in output
