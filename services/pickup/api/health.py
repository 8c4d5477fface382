"""Liveness and readiness.

``/healthz`` answers as long as the process serves requests (no dependency is touched, so a
database outage never gets pods restarted). ``/readyz`` checks every dependency concurrently,
each within a short timeout, and names the ones that are down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from pickup.adapters.database import ping as ping_database
from pickup.api.deps import ResourcesDep
from pickup.api.problems import problem_response, problem_responses
from pickup.runtime import Resources

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


class CheckResult(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: str
    checks: dict[str, CheckResult]


async def _redis(resources: Resources) -> None:
    await resources.redis.ping()


async def _dynamodb(resources: Resources) -> None:
    client = await resources.aws.client("dynamodb")
    await client.describe_table(TableName=resources.settings.names.products_table)


async def _sqs(resources: Resources) -> None:
    client = await resources.aws.client("sqs")
    await client.get_queue_url(QueueName=resources.settings.names.order_queue)


CHECKS: dict[str, Callable[[Resources], Awaitable[None]]] = {
    "database": lambda resources: ping_database(resources.engine),
    "redis": _redis,
    "dynamodb": _dynamodb,
    "sqs": _sqs,
}


async def _run(check: Callable[[Resources], Awaitable[None]], resources: Resources) -> CheckResult:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(resources), CHECK_TIMEOUT_SECONDS)
        error = None
    except TimeoutError:
        error = f"no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        error = f"{type(exc).__name__}: {exc}"[:300]
    latency = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(ok=error is None, latency_ms=latency, error=error)


async def check_readiness(resources: Resources) -> dict[str, CheckResult]:
    results = await asyncio.gather(*(_run(check, resources) for check in CHECKS.values()))
    return dict(zip(CHECKS, results, strict=True))


@router.get("/healthz", summary="Liveness: the process is serving")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every dependency answers",
    response_model=Readiness,
    responses=problem_responses(503),
)
async def readyz(resources: ResourcesDep) -> Any:
    checks = await check_readiness(resources)
    down = [name for name, result in checks.items() if not result.ok]
    if not down:
        return Readiness(status="ready", checks=checks)
    return problem_response(
        503,
        "not-ready",
        "Not ready",
        "Unavailable: " + ", ".join(f"{name} ({checks[name].error})" for name in down),
        instance="/readyz",
        headers={"Retry-After": "5"},
        checks={name: result.model_dump() for name, result in checks.items()},
    )
