"""What a scenario gets: the environment, the running processes and the run's options."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from bench.env import BenchEnv, Process
from bench.monitor import RssMonitor, tree_cpu_seconds
from bench.results import Figures, ScenarioResult


@dataclass
class Measured:
    """One side's rounds and the CPU time its server used during them."""

    rounds: list[Figures] = field(default_factory=list)
    cpu_seconds: float = 0.0

    @property
    def figures(self) -> Figures:
        return Figures.combine(self.rounds)

    @property
    def cpu_ms_per_request(self) -> float | None:
        count = sum(figures.count for figures in self.rounds)
        return round(1000 * self.cpu_seconds / count, 4) if count else None


def cpu_details(app: Measured, bare: Measured) -> dict[str, float | None]:
    """CPU per request of both sides and their ratio (the baseline's over the app's): what
    each request costs the server, whatever CPU share the machine gave it meanwhile."""
    mine, theirs = app.cpu_ms_per_request, bare.cpu_ms_per_request
    return {
        "cpu_ms_per_request": mine,
        "baseline_cpu_ms_per_request": theirs,
        "cpu_ratio": round(theirs / mine, 3) if mine and theirs else None,
    }


@dataclass
class Context:
    env: BenchEnv
    quick: bool
    concurrency: int
    monitor: RssMonitor
    sse_subscribers: int | None = None  # None: the scenario's default
    results: dict[str, ScenarioResult] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def seconds(self, full: float, quick: float = 2.0) -> float:
        return quick if self.quick else full

    @property
    def rounds(self) -> int:
        """Alternating baseline/app rounds: drift on a shared machine hits both sides."""
        return 1 if self.quick else 2

    def alternate(
        self, app: Callable[[], Figures], bare: Callable[[], Figures]
    ) -> tuple[Measured, Measured]:
        """``rounds`` rounds of the app's and the baseline's measurement, each round starting
        with the side the last one ended with (baseline, app, app, baseline, ...), so the
        machine's drift over the run hits both sides alike, with the CPU time each side's
        server process used while measured."""
        sides = {"app": (self.api.pid, app), "bare": (self.baseline.pid, bare)}
        measured = {side: Measured() for side in sides}
        order = ["bare", "app"]
        for _ in range(self.rounds):
            for side in order:
                pid, measure = sides[side]
                used = tree_cpu_seconds(pid)
                measured[side].rounds.append(measure())
                measured[side].cpu_seconds += tree_cpu_seconds(pid) - used
            order.reverse()
        return measured["app"], measured["bare"]

    @property
    def api(self) -> Process:
        return self.env.processes["api"]

    @property
    def baseline(self) -> Process:
        return self.env.processes["baseline"]

    @contextlib.contextmanager
    def redis(self) -> Iterator[Redis]:
        client = Redis.from_url(self.env.redis_url)
        try:
            yield client
        finally:
            client.close()

    def reset_rate_limits(self) -> None:
        """Every request comes from 127.0.0.1: start each measurement with fresh windows."""
        with self.redis() as client:
            keys = list(client.scan_iter("ratelimit:*", count=1000))
            if keys:
                client.delete(*keys)
