"""Running wrk: one Lua script per scenario under bench/wrk/, figures read from its JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.results import Figures

SCRIPTS = Path(__file__).resolve().parent / "wrk"


class WrkMissing(RuntimeError):
    pass


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissing("wrk is not installed: run scripts/install-bench-tools.sh")
    return found


@dataclass(frozen=True)
class WrkLoad:
    threads: int = 1
    connections: int = 32
    seconds: float = 10.0


def run_wrk(url: str, script: str, load: WrkLoad, env: dict[str, str] | None = None) -> Figures:
    """Drive ``url`` with ``bench/wrk/<script>.lua`` and return what wrk measured."""
    command = [
        wrk_binary(),
        "-t",
        str(load.threads),
        "-c",
        str(load.connections),
        "-d",
        f"{max(1, round(load.seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPTS / f"{script}.lua"),
        url,
    ]
    environment = {**os.environ, "BENCH_WRK_DIR": str(SCRIPTS), **(env or {})}
    completed = subprocess.run(  # noqa: S603 (our own fixed command line)
        command, env=environment, capture_output=True, text=True, timeout=load.seconds + 60
    )
    line = next(
        (row for row in completed.stdout.splitlines() if row.startswith("BENCH_JSON ")), None
    )
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(data[key] for key in ("connect", "read", "write", "status", "timeout"))
    seconds = data["duration_us"] / 1e6
    return Figures(
        count=data["requests"],
        seconds=seconds,
        rate=data["requests"] / seconds if seconds else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        statuses={int(code): n for code, n in data.get("statuses", {}).items()},
    )
