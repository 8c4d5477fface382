"""The API's /metrics port: scraped by Prometheus, never behind the public ingress."""

from __future__ import annotations

from typing import Any

from tests.chart.conftest import Chart, by_name, of_kind

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
SETS = ["serviceMonitor.enabled=true", "networkPolicy.enabled=true", "ingress.enabled=true"]


def render(chart: Chart, *extra: str) -> list[dict[str, Any]]:
    return chart.template(sets=[*SETS, *extra])


def api_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = by_name(documents, "Deployment", "pickup-api")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_the_api_pod_serves_metrics_on_a_named_port_of_its_own(chart: Chart) -> None:
    container = api_container(render(chart))

    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000, "metrics": 9000}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["PICKUP_HTTP_PORT"] == "8000"
    assert env["PICKUP_HEALTH_PORT"] == "9000"


def test_prometheus_scrapes_the_api_metrics_port_and_the_workers_health_port(
    chart: Chart,
) -> None:
    documents = render(chart)

    service = by_name(documents, "Service", "pickup-api")
    assert {port["name"]: port["targetPort"] for port in service["spec"]["ports"]} == {
        "http": "http",
        "metrics": "metrics",
    }
    endpoints = {
        monitor["metadata"]["name"]: monitor["spec"]["endpoints"][0]
        for monitor in of_kind(documents, "ServiceMonitor")
    }
    assert endpoints["pickup-api"]["port"] == "metrics"
    assert endpoints["pickup-api"]["path"] == "/metrics"
    assert endpoints["pickup-worker"]["port"] == "http"
    assert endpoints["pickup-notifier"]["port"] == "http"


def test_the_ingress_routes_only_to_the_public_port(chart: Chart) -> None:
    [ingress] = of_kind(render(chart), "Ingress")

    backends = {
        path["backend"]["service"]["port"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"http"}


def test_the_network_policy_lets_prometheus_reach_only_the_metrics_port(chart: Chart) -> None:
    policy = by_name(render(chart), "NetworkPolicy", "pickup-api")

    def namespaces(rule: dict[str, Any]) -> set[str]:
        return {
            peer.get("namespaceSelector", {}).get("matchLabels", {}).get(NAMESPACE_LABEL, "")
            for peer in rule["from"]
        }

    ports = {
        frozenset(namespaces(rule)): [port["port"] for port in rule["ports"]]
        for rule in policy["spec"]["ingress"]
    }
    assert ports[frozenset({"monitoring"})] == [9000]  # the Prometheus peer of values.yaml
    assert ports[frozenset({"ingress-nginx"})] == [8000]


def test_without_a_separate_port_the_api_has_no_metrics_port(chart: Chart) -> None:
    documents = render(chart, "components.api.metrics.port=")

    container = api_container(documents)
    assert [port["name"] for port in container["ports"]] == ["http"]
    assert "PICKUP_HEALTH_PORT" not in {item["name"] for item in container["env"]}
    service = by_name(documents, "Service", "pickup-api")
    assert [port["name"] for port in service["spec"]["ports"]] == ["http"]
