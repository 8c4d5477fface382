"""The health and metrics endpoints of a worker or notifier process (``PICKUP_HEALTH_PORT``).

``/healthz`` answers 200 while every background component (consumers, sweeper, stream reader)
is still running, 503 naming the ones that stopped: a dead loop gets the pod restarted.
``/readyz`` also checks the dependencies (PostgreSQL, Redis, DynamoDB, SQS) the way the API
does. ``/metrics`` is the Prometheus exposition of the process's default registry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pickup.api.health import check_readiness
from pickup.runtime import Resources

Liveness = dict[str, Callable[[], bool]]


def health_app(resources: Resources, components: Liveness) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    def stopped() -> list[str]:
        return [name for name, alive in components.items() if not alive()]

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if down := stopped():
            return JSONResponse({"status": "failing", "stopped": down}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = {
            name: result.model_dump() for name, result in (await check_readiness(resources)).items()
        }
        down = stopped()
        for name in components:
            checks[name] = {"ok": name not in down, "latency_ms": 0.0, "error": None}
        ready = all(check["ok"] for check in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not-ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process's composition root owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def health_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """A server to ``await server.serve()`` as a task; set ``should_exit`` to stop it."""
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="off", log_level="warning", access_log=False
    )
    return _Server(config)
