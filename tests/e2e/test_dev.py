"""`pickup dev` as a developer runs it: one process, no infrastructure, Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def dev_server(tmp_path: Path):
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PICKUP_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pickup.cli.main",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "var"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pickup dev exited early:\n{process.stdout.read()}")
        try:
            if get(base + "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"pickup dev did not answer within 90 s:\n{process.stdout.read()}")
    yield process, base
    if process.poll() is None:
        process.kill()
        process.wait()


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
