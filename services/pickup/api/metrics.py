"""The API's Prometheus metrics: the request middleware and the ``/metrics`` exposition.

:class:`PrometheusMiddleware` is pure ASGI (no ``BaseHTTPMiddleware``: the menu and cart are
hot paths). It labels every request with the route *template* the router chose
(``/api/orders/{order_id}``), ``<unmatched>`` when none did, so raw URLs never become
labels; the static files share their mount's one label (``/static``).

The route is known only once the router has chosen it, so the first request of a path is
watched through its scope (:class:`_RequestScope`). A path whose route has no parameters
(``/api/cart/add``) always reaches that route for a given method (the app routes on the path
and the method alone), so its label is learned from that first request: the next ones are
counted in progress from their start, with no watching. Those paths are the routes' own,
so what is learned stays bounded.

``/metrics`` is never served on the public port, which the ingress routes to. ``pickup api``
serves it on ``PICKUP_HEALTH_PORT`` from its own (parent) process, see :func:`metrics_server`.
With ``--workers N`` every worker process writes its samples to files under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode) and the parent's
exposition adds them up; the files of a worker that died are reaped at the next scrape for
the "live" gauges, while its counters stay counted, so totals never go backwards.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pickup.observability import cloudwatch
from pickup.observability.metrics import HTTP_IN_PROGRESS, HTTP_REQUEST_SECONDS, HTTP_REQUESTS

logger = logging.getLogger("pickup.api.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
# Anything else (a client can send any method) is counted as OTHER, so labels stay bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _RequestScope(dict[str, Any]):
    """The request's scope, which tells its middleware when the router has chosen a route.

    Starlette's router sets ``scope["route"]`` just before it hands the request to the route,
    so the in-progress gauge can carry the route template without matching the routes a
    second time (the cost of doing so grows with the number of routes).
    """

    __slots__ = ("in_progress", "label", "method", "middleware", "root_path")

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        if key == "route":
            self._routed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        dict.update(self, *args, **kwargs)
        if "route" in self:
            self._routed()

    def _routed(self) -> None:
        if self.in_progress is None:
            self.label = str(getattr(self["route"], "path", None) or UNMATCHED)
            self.in_progress = self.middleware._in_progress(self.method, self.label)
            self.in_progress.inc()

    def template(self) -> str:
        """The route template, ``<mount>/{path}`` inside a mounted app, else ``<unmatched>``."""
        if self.label is not None:
            return self.label
        root_path = self.get("root_path", "")
        if root_path != self.root_path:  # a mount took it (the static files)
            return f"{root_path}/{{path}}"
        return UNMATCHED


class PrometheusMiddleware:
    """Counts, times and tracks every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Children of the labelled metrics, looked up once per label set (labels() takes a
        # lock and validates; a dict lookup costs a few dozen nanoseconds).
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._seconds: dict[tuple[str, str], Any] = {}
        self._progress: dict[tuple[str, str], Any] = {}
        # (method, path) of a route without parameters, which is its label -> the
        # in-progress child of that label.
        self._fixed: dict[tuple[str, str], Any] = {}

    def _in_progress(self, method: str, route: str) -> Any:
        child = self._progress.get((method, route))
        if child is None:
            child = self._progress[(method, route)] = HTTP_IN_PROGRESS.labels(method, route)
        return child

    def _observe_seconds(self, method: str, route: str, seconds: float) -> None:
        child = self._seconds.get((method, route))
        if child is None:
            child = self._seconds[(method, route)] = HTTP_REQUEST_SECONDS.labels(method, route)
        child.observe(seconds)
        cloudwatch.observe("RequestLatency", seconds * 1000.0)

    def _count(self, method: str, route: str, status: int) -> None:
        child = self._requests.get((method, route, status))
        if child is None:
            child = HTTP_REQUESTS.labels(method, route, str(status))
            self._requests[(method, route, status)] = child
        child.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in METHODS:
            method = "OTHER"
        route = scope["path"]
        in_progress = self._fixed.get((method, route))
        # A request whose route is not known yet: its scope tells when the router chose.
        watched = self._watch(scope, method) if in_progress is None else None
        if in_progress is not None:
            in_progress.inc()
        started = time.perf_counter()
        status = 0
        timed = False

        async def send_timed(message: Message) -> None:
            nonlocal status, timed
            if message["type"] == "http.response.start":
                status = message["status"]
                timed = True
                label = route if watched is None else watched.template()
                self._observe_seconds(method, label, _since(started))
            await send(message)

        try:
            await self.app(scope if watched is None else watched, receive, send_timed)
        finally:
            if watched is not None:
                route = watched.template()
                in_progress = watched.in_progress
                if in_progress is not None and route == scope["path"]:
                    # A route without parameters: learn it.
                    self._fixed[(method, route)] = in_progress
            if in_progress is not None:
                in_progress.dec()
            if not timed:  # no answer started: the exception becomes a 500 further out
                self._observe_seconds(method, route, _since(started))
            self._count(method, route, status or 500)

    def _watch(self, scope: Scope, method: str) -> _RequestScope:
        request = _RequestScope(scope)
        request.middleware = self
        request.method = method
        request.in_progress = None
        request.label = None
        request.root_path = scope.get("root_path", "")
        return request


def _since(started: float) -> float:
    return time.perf_counter() - started


# --- Exposition ---------------------------------------------------------------------------

_LIVE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


class ReapingMultiProcessCollector(multiprocess.MultiProcessCollector):
    """prometheus-client's multiprocess collector that first forgets dead processes' gauges.

    ``livesum``/``liveall`` gauges (requests and messages in progress) of a process that died
    would otherwise be added in forever; its counters and histograms stay, as they should.
    """

    def collect(self) -> Any:
        for path in glob.glob(os.path.join(self._path, "gauge_live*.db")):
            match = _LIVE_FILE.search(path)
            if match and not _alive(pid := int(match.group(1))):
                multiprocess.mark_process_dead(pid, self._path)
        return super().collect()


def exposition_registry(multiproc_dir: str | None) -> CollectorRegistry:
    """What ``/metrics`` shows: this process's registry, or every process's files in the dir."""
    if multiproc_dir is None:
        return REGISTRY
    registry = CollectorRegistry()
    ReapingMultiProcessCollector(registry, path=multiproc_dir)
    return registry


@contextlib.contextmanager
def multiprocess_dir(workers: int, configured: str | None = None) -> Iterator[str | None]:
    """The directory ``workers`` API processes share their samples through, exported to them.

    None for one process: it serves its own registry. For several, ``configured`` (the
    ``PROMETHEUS_MULTIPROC_DIR`` the parent was started with; its old sample files are removed
    first, as an emptyDir outlives a container restart) or else a fresh directory under the
    temporary directory, removed afterwards. The parent itself records nothing: it should be
    started without the variable, or have removed it before importing prometheus-client.
    """
    if workers <= 1:
        yield None
        return
    directory = configured or tempfile.mkdtemp(prefix="pickup-metrics-")
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.remove(stale)
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        if configured is None:
            shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def metrics_server(host: str, port: int, multiproc_dir: str | None) -> Iterator[int]:
    """Serve ``/metrics`` on ``host:port`` from a thread of this process; yields the port.

    In ``pickup api`` this is the parent process: with several workers it never serves a
    request itself, and with one its thread keeps the scrape off the event loop.
    """
    registry: Collector = exposition_registry(multiproc_dir)
    server, thread = start_http_server(port, addr=host, registry=registry)  # type: ignore[arg-type]
    logger.info("metrics.serving url=http://%s:%s/metrics", host, server.server_port)
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics() -> Response:
    """This process's metrics on the app's own port: only the development stack mounts it."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
