"""What a scenario gets: the environment, the running processes and the run's options."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from bench.env import BenchEnv, Process
from bench.monitor import RssMonitor
from bench.results import ScenarioResult


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
