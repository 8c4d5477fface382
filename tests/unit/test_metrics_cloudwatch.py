"""The CloudWatch publisher's pure parts: the metric contract, rounding, batching, bounds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pickup.observability import cloudwatch
from pickup.observability.cloudwatch import (
    COUNTERS,
    DISTRIBUTIONS,
    GAUGES,
    MAX_VALUES_PER_DATUM,
    METRIC_NAMES,
    METRIC_UNITS,
    ZERO_FILLED,
    CloudWatchPublisher,
    two_significant_figures,
)
from pickup.settings import load_settings

CONTRACT = {
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


def publisher(service: str = "api", **overrides: Any) -> CloudWatchPublisher:
    settings = load_settings(
        database_url="postgresql://pickup@db/pickup",
        redis_url="redis://cache:6379/0",
        env="test",
        **overrides,
    )
    return CloudWatchPublisher(aws=None, settings=settings, service=service)  # type: ignore[arg-type]


def test_the_metric_names_and_units_are_exactly_the_shared_contract() -> None:
    assert frozenset(CONTRACT) == METRIC_NAMES
    assert METRIC_UNITS == CONTRACT


def test_every_metric_has_exactly_one_source() -> None:
    sources = [*COUNTERS, *DISTRIBUTIONS, *GAUGES]
    assert sorted(sources) == sorted(METRIC_NAMES)
    for names in ZERO_FILLED.values():
        assert names <= set(COUNTERS)


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(0.0, 0.0), (-3.0, 0.0), (0.01234, 0.012), (4.2, 4.2), (12.34, 12.0), (987.0, 990.0)],
)
def test_values_are_kept_to_two_significant_figures(value: float, rounded: float) -> None:
    assert two_significant_figures(value) == rounded


def test_a_million_latencies_take_a_bounded_number_of_keys() -> None:
    sink = publisher()
    rng = random.Random(7)
    for _ in range(100_000):
        sink.add("RequestLatency", rng.lognormvariate(3, 2))  # ~0.01 ms .. minutes

    keys = sink._distributions["RequestLatency"]
    assert sum(keys.values()) == 100_000
    assert len(keys) < 100 * 12  # under a hundred per decade


def test_a_distribution_is_sent_as_values_and_counts_in_datums_of_at_most_150() -> None:
    sink = publisher()
    for step in range(2000):  # 1 µs to minutes: several hundred distinct values
        sink.add("RequestLatency", 0.001 * 1.01**step)
    datums = sink._datums({}, sink._distributions, {})

    assert len(datums) > 1
    assert all(len(datum["Values"]) <= MAX_VALUES_PER_DATUM for datum in datums)
    assert sum(sum(datum["Counts"]) for datum in datums) == 2000
    assert {datum["Unit"] for datum in datums} == {"Milliseconds"}
    assert datums[0]["Dimensions"] == [
        {"Name": "Service", "Value": "api"},
        {"Name": "Environment", "Value": "test"},
    ]


def test_counts_are_sent_when_they_moved_or_when_the_service_always_sends_them() -> None:
    sink = publisher("notifier")
    sink._sent_totals = {name: 10.0 for name in COUNTERS}
    totals = {name: 10.0 for name in COUNTERS} | {"OrdersPlaced": 12.0}

    sent = {datum["MetricName"]: datum["Value"] for datum in sink._datums(totals, {}, {})}

    assert sent == {
        "OrdersPlaced": 2.0,
        "MessagesHandled": 0.0,
        "MessagesFailed": 0.0,
        "NotificationsSent": 0.0,
        "NotificationsFailed": 0.0,
    }


def test_recording_feeds_only_running_publishers_and_rejects_unknown_names() -> None:
    sink = publisher()
    cloudwatch.observe("RequestLatency", 5.0)  # not running: nothing kept
    assert sink._distributions["RequestLatency"] == {}

    cloudwatch._ACTIVE.append(sink)
    try:
        cloudwatch.observe("RequestLatency", 5.0)
        cloudwatch.gauge("OutboxPending", 3)
    finally:
        cloudwatch._ACTIVE.remove(sink)

    assert sink._distributions["RequestLatency"] == {5.0: 1}
    assert sink._gauges == {"OutboxPending": 3.0}
    with pytest.raises(ValueError, match="not one of the distributions"):
        sink.add("OrdersPlaced", 1)
    with pytest.raises(ValueError, match="not one of the gauges"):
        sink.set_gauge("RequestCount", 1)
    with pytest.raises(ValueError, match="service must be one of"):
        publisher("operator")


def test_the_namespace_and_interval_come_from_the_settings() -> None:
    sink = publisher(cloudwatch_namespace="Shop/Staging", cloudwatch_flush_interval_seconds=30)

    assert (sink.namespace, sink.interval) == ("Shop/Staging", 30)
    with pytest.raises(Exception, match="AWS/ namespaces are reserved"):
        publisher(cloudwatch_namespace="AWS/SQS")
