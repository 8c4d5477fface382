"""The API's /metrics with several worker processes: their samples are added up, and a dead
process's in-progress gauges are forgotten while its counts are kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pickup.api.metrics import exposition_registry, metrics_server, multiprocess_dir

# A worker process: records a checkout, a request in progress, and exits.
WORKER = """
from pickup.observability.metrics import HTTP_IN_PROGRESS, ORDER_EVENTS, HTTP_REQUEST_SECONDS
ORDER_EVENTS.labels("placed").inc({placed})
HTTP_REQUEST_SECONDS.labels("POST", "/api/orders").observe(0.02)
HTTP_IN_PROGRESS.labels("GET", "/api/events").inc()
"""


def record(directory: Path, placed: int) -> int:
    """Run a process that records into ``directory``; its pid."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    process = subprocess.run(
        [sys.executable, "-c", WORKER.format(placed=placed) + "print(__import__('os').getpid())"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(process.stdout.strip())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (item.name, tuple(sorted(item.labels.items()))): item.value
        for family in text_string_to_metric_families(text)
        for item in family.samples
    }


def test_two_processes_samples_are_added_up(tmp_path: Path) -> None:
    record(tmp_path, placed=2)
    record(tmp_path, placed=3)

    exposed = samples(generate_latest(exposition_registry(str(tmp_path))).decode())

    assert exposed[("pickup_order_events_total", (("event", "placed"),))] == 5
    count = (
        "pickup_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/api/orders")),
    )
    assert exposed[count] == 2


def test_a_dead_process_keeps_its_counts_but_not_its_in_progress_gauge(tmp_path: Path) -> None:
    dead = record(tmp_path, placed=1)  # it has exited
    assert (tmp_path / f"gauge_livesum_{dead}.db").exists()

    exposed = samples(generate_latest(exposition_registry(str(tmp_path))).decode())

    assert not (tmp_path / f"gauge_livesum_{dead}.db").exists()
    in_progress = (
        "pickup_http_requests_in_progress",
        (("method", "GET"), ("route", "/api/events")),
    )
    assert exposed.get(in_progress, 0) == 0
    assert exposed[("pickup_order_events_total", (("event", "placed"),))] == 1


def test_one_process_needs_no_directory_and_several_get_a_fresh_one(tmp_path: Path) -> None:
    with multiprocess_dir(1) as none:
        assert none is None
        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ

    with multiprocess_dir(2) as fresh:
        assert fresh is not None
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == fresh
    assert not Path(fresh).exists()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ

    (tmp_path / "counter_4242.db").write_bytes(b"left by the last container")
    (tmp_path / "keep.txt").write_text("not ours")
    with multiprocess_dir(2, str(tmp_path)) as configured:
        assert configured == str(tmp_path)
        assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.txt"]
    assert tmp_path.exists()


def test_the_metrics_server_serves_the_directorys_samples_over_http(tmp_path: Path) -> None:
    record(tmp_path, placed=4)

    with metrics_server("127.0.0.1", 0, str(tmp_path)) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)

    assert response.status_code == 200
    assert samples(response.text)[("pickup_order_events_total", (("event", "placed"),))] == 4
