"""With tracing on, the traced pods may reach the OpenTelemetry collector, and only they."""

from __future__ import annotations

from typing import Any

from tests.chart.conftest import RELEASE, Chart, by_name

BASE = ["networkPolicy.enabled=true"]


def _egress_ports(documents: list[dict[str, Any]], component: str) -> set[int]:
    policy = by_name(documents, "NetworkPolicy", f"{RELEASE}-{component}")["spec"]
    return {port["port"] for rule in policy["egress"] for port in rule.get("ports", [])}


def test_tracing_opens_the_collector_port_to_the_traced_components_only(chart: Chart) -> None:
    off = chart.template(sets=BASE)
    on = chart.template(
        sets=[*BASE, "config.tracingEnabled=true", "networkPolicy.egress.otlp.ports={4317,4318}"]
    )
    for component in ("api", "worker", "notifier"):
        assert 4318 not in _egress_ports(off, component), component
        assert {4317, 4318} <= _egress_ports(on, component), component
    assert 4318 not in _egress_ports(on, "operator")  # the operator exports no spans
    configmap = by_name(on, "ConfigMap", RELEASE)["data"]
    assert configmap["PICKUP_TRACING_ENABLED"] == "true"
