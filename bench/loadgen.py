"""An in-process closed-loop load generator: ``concurrency`` tasks, each repeating one call.

Used where wrk cannot check the answers (checkout: every 202's order is reconciled after)
and for the direct-call baselines, so both sides of a ratio are driven the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.results import Figures

# One call: returns None on success, else a short label of what went wrong.
Call = Callable[[int], Awaitable[str | None]]


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def figures(self) -> Figures:
        return Figures.from_latencies(self.latencies, self.seconds, sum(self.failures.values()))


async def closed_loop(call: Call, concurrency: int, seconds: float) -> Outcome:
    outcome = Outcome()
    deadline = time.monotonic() + seconds

    async def user(index: int) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                failure = await call(index)
            except Exception as error:  # counted, never fatal: the run goes on
                failure = type(error).__name__
            if failure is None:
                outcome.latencies.append(time.perf_counter() - started)
            else:
                outcome.failures[failure] += 1

    started = time.monotonic()
    await asyncio.gather(*(user(index) for index in range(concurrency)))
    outcome.seconds = time.monotonic() - started
    return outcome
