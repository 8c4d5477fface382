"""The key metrics, published to CloudWatch in batches, off the request path.

Off unless ``PICKUP_CLOUDWATCH_METRICS_ENABLED``. Each process (the API's lifespan, the worker
and notifier composition roots) runs one :class:`CloudWatchPublisher`, which aggregates in
memory and sends one ``PutMetricData`` every ``PICKUP_CLOUDWATCH_FLUSH_INTERVAL_SECONDS`` and
once more on shutdown, to ``PICKUP_CLOUDWATCH_NAMESPACE`` (``Pickup``) with the dimensions
``Service`` (api, worker, notifier) and ``Environment`` (``PICKUP_ENV``).

Where the values come from, so that nothing is recorded twice:

- **counts** are the increase since the last flush of the Prometheus counters the code moves
  anyway (``pickup_order_events_total{event="placed"}`` becomes ``OrdersPlaced``);
- **distributions** (``RequestLatency`` in milliseconds, ``PlacedToConfirmed`` in seconds) are
  handed to :func:`observe` where the Prometheus histogram is observed. A value is rounded to
  two significant figures and counted, so recording is one dict increment, memory is bounded
  (under a hundred keys per decade) and the batch carries ``Values``/``Counts``, from which
  CloudWatch computes percentiles such as p99;
- **gauges** are set with :func:`gauge` by the periodic samplers; the latest value is sent.

A failed ``PutMetricData`` is logged and retried with the next flush: counts are simply not
taken as sent, distributions and gauges are merged back (still bounded), so an outage of any
length costs a bounded amount of memory and never stops the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import Counter

from pickup.adapters.aws import AWSClients
from pickup.observability.metrics import (
    CHECKOUT_STOCK_CONFLICTS,
    HTTP_REQUESTS,
    NOTIFICATIONS,
    ORDER_EVENTS,
    QUEUE_MESSAGES,
)
from pickup.settings import Settings

logger = logging.getLogger("pickup.observability.cloudwatch")

# Every metric in the namespace, with its unit (the shared contract of the dashboards/alarms).
METRIC_UNITS: dict[str, str] = {
    "RequestCount": "Count",
    "ServerErrors": "Count",
    "RequestLatency": "Milliseconds",
    "OrdersPlaced": "Count",
    "OrdersConfirmed": "Count",
    "OrdersRejected": "Count",
    "OrdersCancelled": "Count",
    "OrdersExpired": "Count",
    "CheckoutStockConflicts": "Count",
    "PlacedToConfirmed": "Seconds",
    "MessagesHandled": "Count",
    "MessagesFailed": "Count",
    "NotificationsSent": "Count",
    "NotificationsFailed": "Count",
    "OutOfStockProducts": "Count",
    "LowStockProducts": "Count",
    "ActiveReservations": "Count",
    "OutboxPending": "Count",
}
METRIC_NAMES: frozenset[str] = frozenset(METRIC_UNITS)
SERVICES = ("api", "worker", "notifier")

Labels = Mapping[str, str]


def _label_in(name: str, *values: str) -> Callable[[Labels], bool]:
    wanted = frozenset(values)
    return lambda labels: labels.get(name) in wanted


# Counts: which Prometheus counter (and which of its series) each one adds up.
COUNTERS: dict[str, tuple[Counter, Callable[[Labels], bool] | None]] = {
    "RequestCount": (HTTP_REQUESTS, None),
    "ServerErrors": (HTTP_REQUESTS, lambda labels: labels.get("status", "").startswith("5")),
    "OrdersPlaced": (ORDER_EVENTS, _label_in("event", "placed")),
    "OrdersConfirmed": (ORDER_EVENTS, _label_in("event", "confirmed")),
    "OrdersRejected": (ORDER_EVENTS, _label_in("event", "rejected")),
    "OrdersCancelled": (ORDER_EVENTS, _label_in("event", "cancelled")),
    "OrdersExpired": (ORDER_EVENTS, _label_in("event", "expired")),
    "CheckoutStockConflicts": (CHECKOUT_STOCK_CONFLICTS, None),
    "MessagesHandled": (QUEUE_MESSAGES, _label_in("outcome", "ack")),
    "MessagesFailed": (QUEUE_MESSAGES, _label_in("outcome", "retry", "poison", "error")),
    "NotificationsSent": (NOTIFICATIONS, _label_in("result", "sent")),
    # An ambiguous send (the provider may have taken it) is a failed attempt too: it is retried.
    "NotificationsFailed": (NOTIFICATIONS, _label_in("result", "failed", "ambiguous")),
}
DISTRIBUTIONS = ("RequestLatency", "PlacedToConfirmed")
GAUGES = ("OutOfStockProducts", "LowStockProducts", "ActiveReservations", "OutboxPending")

# Counts each service sends every period, zero included, so an alarm sees 0 rather than
# missing data; any other count is sent by whichever process moved it.
ZERO_FILLED: dict[str, frozenset[str]] = {
    "api": frozenset(
        {
            "RequestCount",
            "ServerErrors",
            "OrdersPlaced",
            "OrdersCancelled",
            "CheckoutStockConflicts",
        }
    ),
    "worker": frozenset(
        {"OrdersConfirmed", "OrdersRejected", "OrdersExpired", "MessagesHandled", "MessagesFailed"}
    ),
    "notifier": frozenset(
        {"MessagesHandled", "MessagesFailed", "NotificationsSent", "NotificationsFailed"}
    ),
}

MAX_DATUMS_PER_REQUEST = 1000  # PutMetricData's limit
MAX_VALUES_PER_DATUM = 150  # Values/Counts entries in one datum
PUT_TIMEOUT_SECONDS = 10.0
SEND_ERRORS = (BotoCoreError, ClientError, OSError, TimeoutError)

# Publishers running in this process; observe() and gauge() feed each.
_ACTIVE: list[CloudWatchPublisher] = []


def observe(name: str, value: float) -> None:
    """Record one value of a distribution (RequestLatency ms, PlacedToConfirmed s). O(1)."""
    for publisher in _ACTIVE:
        publisher.add(name, value)


def gauge(name: str, value: float) -> None:
    """Set a gauge (OutOfStockProducts, ...): the latest value of the period is sent."""
    for publisher in _ACTIVE:
        publisher.set_gauge(name, value)


def two_significant_figures(value: float) -> float:
    if value <= 0:
        return 0.0
    return float(f"{value:.2g}")


def counter_totals() -> dict[str, float]:
    """This process's running total of every count, read from the Prometheus counters."""
    totals: dict[str, float] = {}
    collected: dict[int, list[Any]] = {}
    for name, (metric, wanted) in COUNTERS.items():
        samples = collected.get(id(metric))
        if samples is None:
            samples = collected[id(metric)] = [
                sample
                for family in metric.collect()
                for sample in family.samples
                if sample.name.endswith("_total")
            ]
        totals[name] = sum(
            sample.value for sample in samples if wanted is None or wanted(sample.labels)
        )
    return totals


class CloudWatchPublisher:
    def __init__(self, aws: AWSClients, settings: Settings, service: str) -> None:
        if service not in SERVICES:
            raise ValueError(f"service must be one of {SERVICES}, got {service!r}")
        self._aws = aws
        self.service = service
        self.namespace = settings.cloudwatch_namespace
        self.interval = settings.cloudwatch_flush_interval_seconds
        self.dimensions = [
            {"Name": "Service", "Value": service},
            {"Name": "Environment", "Value": settings.env.value},
        ]
        self._zero_filled = ZERO_FILLED[service]
        self._sent_totals = counter_totals()
        self._distributions: dict[str, dict[float, int]] = {name: {} for name in DISTRIBUTIONS}
        self._gauges: dict[str, float] = {}
        self._lock = asyncio.Lock()

    # --- Recording (synchronous, O(1)) ---------------------------------------------------

    def add(self, name: str, value: float) -> None:
        counts = self._distributions.get(name)
        if counts is None:
            raise ValueError(f"{name!r} is not one of the distributions {DISTRIBUTIONS}")
        key = two_significant_figures(value)
        counts[key] = counts.get(key, 0) + 1

    def set_gauge(self, name: str, value: float) -> None:
        if name not in GAUGES:
            raise ValueError(f"{name!r} is not one of the gauges {GAUGES}")
        self._gauges[name] = float(value)

    # --- Publishing ------------------------------------------------------------------------

    def _datum(self, name: str, **value: Any) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": self.dimensions,
            "Unit": METRIC_UNITS[name],
            **value,
        }

    def _datums(
        self,
        totals: dict[str, float],
        distributions: dict[str, dict[float, int]],
        gauges: dict[str, float],
    ) -> list[dict[str, Any]]:
        datums = []
        for name, total in totals.items():
            increase = max(total - self._sent_totals.get(name, 0.0), 0.0)
            if increase > 0 or name in self._zero_filled:
                datums.append(self._datum(name, Value=increase))
        for name, counts in distributions.items():
            pairs = sorted(counts.items())
            for start in range(0, len(pairs), MAX_VALUES_PER_DATUM):
                chunk = pairs[start : start + MAX_VALUES_PER_DATUM]
                datums.append(
                    self._datum(
                        name,
                        Values=[value for value, _ in chunk],
                        Counts=[float(count) for _, count in chunk],
                    )
                )
        for name, value in gauges.items():
            datums.append(self._datum(name, Value=value))
        return datums

    async def flush(self) -> bool:
        """Send what was recorded since the last flush; False (and kept for later) on failure."""
        async with self._lock:
            totals = counter_totals()
            distributions = self._distributions
            self._distributions = {name: {} for name in DISTRIBUTIONS}
            gauges, self._gauges = self._gauges, {}
            datums = self._datums(totals, distributions, gauges)
            try:
                async with asyncio.timeout(PUT_TIMEOUT_SECONDS):
                    client = await self._aws.client("cloudwatch")
                    for start in range(0, len(datums), MAX_DATUMS_PER_REQUEST):
                        await client.put_metric_data(
                            Namespace=self.namespace,
                            MetricData=datums[start : start + MAX_DATUMS_PER_REQUEST],
                        )
            except SEND_ERRORS as error:
                self._keep_for_retry(distributions, gauges)
                logger.warning(
                    "cloudwatch.publish_failed service=%s datums=%s error=%s: %s",
                    self.service,
                    len(datums),
                    type(error).__name__,
                    error,
                )
                return False
            self._sent_totals = totals
            return True

    def _keep_for_retry(
        self, distributions: dict[str, dict[float, int]], gauges: dict[str, float]
    ) -> None:
        for name, counts in distributions.items():
            current = self._distributions[name]
            for value, count in counts.items():
                current[value] = current.get(value, 0) + count
        for name, value in gauges.items():
            self._gauges.setdefault(name, value)  # a newer sample wins

    async def run(self) -> None:
        """Flush every interval until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # never let a metrics problem end the loop
                logger.exception("cloudwatch.flush_crashed service=%s", self.service)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CloudWatchPublisher]:
        """Publish for the duration of the block; the last flush happens on the way out."""
        _ACTIVE.append(self)
        task = asyncio.create_task(self.run(), name=f"cloudwatch-{self.service}")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            _ACTIVE.remove(self)
            try:
                await self.flush()
            except Exception:
                logger.exception("cloudwatch.final_flush_crashed service=%s", self.service)


@contextlib.asynccontextmanager
async def publishing(
    aws: AWSClients, settings: Settings, service: str
) -> AsyncIterator[CloudWatchPublisher | None]:
    """A publisher for this process while the block runs, if the setting enables one."""
    if not settings.cloudwatch_metrics_enabled:
        yield None
        return
    publisher = CloudWatchPublisher(aws, settings, service)
    async with publisher.running():
        logger.info(
            "cloudwatch.publishing namespace=%s service=%s environment=%s every=%ss",
            publisher.namespace,
            service,
            settings.env.value,
            publisher.interval,
        )
        yield publisher
