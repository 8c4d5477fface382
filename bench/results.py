"""Figures, scenario results, the machine they came from, the table and the JSON files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

PACKAGES = (
    "pickup",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "sqlalchemy",
    "asyncpg",
    "redis",
    "aiobotocore",
    "moto",
    "locust",
    "httpx",
)


@dataclass
class Figures:
    """One measured run: how many, over how long, and the latency percentiles."""

    count: int
    seconds: float
    rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: int
    statuses: dict[int, int] = field(default_factory=dict)  # answers per HTTP status, if known

    @staticmethod
    def from_latencies(latencies: list[float], seconds: float, errors: int) -> Figures:
        """From per-request latencies in seconds (successes only)."""
        return Figures(
            count=len(latencies),
            seconds=seconds,
            rate=len(latencies) / seconds if seconds else 0.0,
            p50_ms=percentile(latencies, 50),
            p95_ms=percentile(latencies, 95),
            p99_ms=percentile(latencies, 99),
            errors=errors,
        )

    @staticmethod
    def combine(rounds: list[Figures]) -> Figures:
        """Several rounds as one: totals for counts, the mean of each percentile."""

        def mean(values: list[float | None]) -> float | None:
            present = [value for value in values if value is not None]
            return statistics.fmean(present) if present else None

        count = sum(r.count for r in rounds)
        seconds = sum(r.seconds for r in rounds)
        return Figures(
            count=count,
            seconds=seconds,
            rate=count / seconds if seconds else 0.0,
            p50_ms=mean([r.p50_ms for r in rounds]),
            p95_ms=mean([r.p95_ms for r in rounds]),
            p99_ms=mean([r.p99_ms for r in rounds]),
            errors=sum(r.errors for r in rounds),
            statuses=dict(sum((Counter(r.statuses) for r in rounds), Counter())),
        )


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile of latencies in seconds, in milliseconds (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank] * 1000


@dataclass
class ScenarioResult:
    name: str
    unit: str  # of `value`: "requests/s", "orders/s", "MiB"
    value: float | None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    baseline: float | None = None
    baseline_what: str | None = None
    ratio: float | None = None
    goal: str = ""
    passed: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None  # why the scenario did not run

    @staticmethod
    def versus(
        name: str,
        unit: str,
        measured: Figures,
        baseline: Figures,
        baseline_what: str,
        goal_ratio: float,
        **details: Any,
    ) -> ScenarioResult:
        ratio = measured.rate / baseline.rate if baseline.rate else None
        return ScenarioResult(
            name=name,
            unit=unit,
            value=measured.rate,
            p50_ms=measured.p50_ms,
            p95_ms=measured.p95_ms,
            p99_ms=measured.p99_ms,
            errors=measured.errors,
            baseline=baseline.rate,
            baseline_what=baseline_what,
            ratio=ratio,
            goal=f"ratio >= {goal_ratio}",
            passed=ratio is not None and ratio >= goal_ratio and measured.errors == 0,
            details={
                "count": measured.count,
                "seconds": round(measured.seconds, 2),
                "baseline_p50_ms": baseline.p50_ms,
                "baseline_p99_ms": baseline.p99_ms,
                "baseline_errors": baseline.errors,
                **({"statuses": measured.statuses} if measured.statuses else {}),
                **details,
            },
        )


def machine() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        load = None
    return {
        "hostname": platform.node(),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "load_average_at_start": load,
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def write(
    results: list[ScenarioResult], run: dict[str, Any], directory: Path = RESULTS
) -> tuple[Path, Path]:
    """``latest.json`` and a timestamped copy; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC)
    document = _clean(
        {
            "generated_at": stamp.isoformat(timespec="seconds"),
            "run": run,
            "machine": run.pop("machine"),
            "scenarios": {result.name: asdict(result) for result in results},
        }
    )
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    latest = directory / "latest.json"
    stamped = directory / f"bench-{stamp:%Y%m%dT%H%M%SZ}.json"
    latest.write_text(text)
    stamped.write_text(text)
    return latest, stamped


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(results: list[ScenarioResult]) -> str:
    header = (
        f"{'scenario':<10} {'value':>10} {'unit':<10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'baseline':>10} {'ratio':>6}  {'goal':<16} result"
    )
    rows = [header, "-" * len(header)]
    for result in results:
        if result.skipped:
            rows.append(f"{result.name:<10} skipped: {result.skipped}")
            continue
        verdict = {True: "PASS", False: "FAIL", None: "-"}[result.passed]
        rows.append(
            f"{result.name:<10} {_fmt(result.value):>10} {result.unit:<10} "
            f"{_fmt(result.p50_ms, 2):>8} {_fmt(result.p95_ms, 2):>8} {_fmt(result.p99_ms, 2):>8} "
            f"{result.errors:>6} {_fmt(result.baseline):>10} {_fmt(result.ratio, 2):>6}  "
            f"{result.goal:<16} {verdict}"
        )
        shown = {k: v for k, v in result.details.items() if not isinstance(v, dict | list)}
        if shown:
            extras = ", ".join(f"{key}={_clean(value)}" for key, value in shown.items())
            rows.append(f"{'':<10} {extras}")
    return "\n".join(rows)
