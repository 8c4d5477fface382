"""`pickup dev` as a developer runs it: one process, no infrastructure, Ctrl-C stops it."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_dev_serves_the_platform_on_embedded_defaults_and_stops_on_ctrl_c(dev_server) -> None:
    process, base = dev_server

    status, ready = get(base + "/readyz")
    assert status == 200, ready
    assert set(ready["checks"]) == {"database", "redis", "dynamodb", "sqs"}

    status, menu = get(base + "/api/menu")
    assert status == 200
    products = [product for category in menu["categories"] for product in category["products"]]
    assert len(products) >= 20
    assert {product["stock"]["status"] for product in products} == {
        "in_stock",
        "low_stock",
        "out_of_stock",
    }

    status, problem = get(base + "/api/menu/no-such-thing")
    assert status == 404
    assert problem["type"].endswith("/unknown-product")

    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert time.monotonic() - started < 15
    assert "pickup is running at " + base in output
    assert "staff login  admin@pickup.example / " in output
    assert "Traceback" not in output
