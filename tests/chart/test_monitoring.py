"""The chart's alerts and dashboards: they parse, link runbooks that exist, use exported metrics.

Every ``pickup_*`` series named in an alert expression or a dashboard query must be a sample
name that a metric of the catalogue (``pickup.observability.metrics.ALL``) exposes; other
series must be standard ones (``up``, ``process_*``, ``kube_*``). With ``promtool`` (Debian's
``prometheus`` package) the rendered rules and every dashboard query are parsed by Prometheus's
own parser, and each alert is run against synthetic series (``promtool test rules``): it must
fire when its condition holds for its ``for:`` and stay quiet otherwise.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pickup.observability import metrics
from pickup.observability.monitoring import ALERTS, PROMETHEUS_ONLY_ALERTS
from pickup.settings import Settings
from tests.chart.conftest import CHART, ROOT, Chart, RenderError, of_kind

RUNBOOKS = ROOT / "docs" / "runbooks"
DEFAULT_RUNBOOK_BASE = str(Settings.model_fields["runbook_base_url"].default)
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
STANDARD_PREFIXES = ("process_", "kube_", "python_")
STANDARD_SERIES = {"up"}
# Identifiers that are PromQL functions, keywords or Grafana variables, not series.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "rate", "irate", "increase", "histogram_quantile",
    "time", "absent", "le", "bool", "offset", "label_values",
}  # fmt: skip


def exposed_samples() -> dict[str, str]:
    """Every sample name the catalogue's metrics expose, mapped to the metric's family."""
    names: dict[str, str] = {}
    for metric in metrics.ALL:
        (family,) = metric.describe()
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = family.name
    return names


EXPOSED = exposed_samples()


def series_in(expression: str) -> set[str]:
    """Series names in a PromQL expression: identifiers followed by `{`, `[` or used bare."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    # Label names in `by (...)`/`on (...)` clauses are not series.
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", without_ranges):
        words -= {label.strip() for label in clause.split(",")}
    return {word for word in words if word not in PROMQL_WORDS}


def unknown_series(expression: str) -> set[str]:
    unknown = set()
    for name in series_in(expression):
        if name in STANDARD_SERIES or name.startswith(STANDARD_PREFIXES):
            continue
        if name not in EXPOSED:
            unknown.add(name)
    return unknown


def balanced(expression: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression):
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            if not stack or stack.pop() != pairs[char]:
                return False
    return not stack


def rules_of(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (rule,) = of_kind(documents, "PrometheusRule")
    return [item for group in rule["spec"]["groups"] for item in group["rules"]]


@pytest.fixture(scope="module")
def alert_rules(chart: Chart) -> list[dict[str, Any]]:
    return rules_of(chart.template(sets=["prometheusRule.enabled=true"]))


@pytest.fixture(scope="module")
def dashboards(chart: Chart) -> dict[str, dict[str, Any]]:
    documents = chart.template(sets=["dashboards.enabled=true"])
    found = {}
    for doc in of_kind(documents, "ConfigMap"):
        if doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            for key, content in doc["data"].items():
                found[key] = json.loads(content)
    assert found, "no dashboard ConfigMap rendered"
    return found


def panel_expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


# --- The catalogue helpers themselves -----------------------------------------------------


def test_series_are_found_in_expressions_and_labels_are_not_series() -> None:
    expression = (
        "histogram_quantile(0.99, sum by (queue, le) "
        '(rate(pickup_queue_message_lag_seconds_bucket{namespace="x", job=~"pickup_x"}[5m])))'
        " / on (queue) max by (queue) (pickup_queue_depth) > 0"
    )
    assert series_in(expression) == {
        "pickup_queue_message_lag_seconds_bucket",
        "pickup_queue_depth",
    }
    assert unknown_series(expression) == set()
    assert unknown_series("rate(pickup_http_requests_bucket[5m])") == {
        "pickup_http_requests_bucket"
    }
    assert unknown_series("pickup_queue_depth_total") == {"pickup_queue_depth_total"}


# --- PrometheusRule -----------------------------------------------------------------------


def test_the_rule_has_every_alert_of_both_catalogues(alert_rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in alert_rules if "alert" in rule]
    assert len(names) == len(set(names))
    assert set(names) == set(ALERTS) | set(PROMETHEUS_ONLY_ALERTS)


def test_every_alert_links_a_runbook_that_exists(alert_rules: list[dict[str, Any]]) -> None:
    for rule in alert_rules:
        url = rule["annotations"]["runbook_url"]
        assert url == f"{DEFAULT_RUNBOOK_BASE}/{rule['alert']}.md"
        assert (RUNBOOKS / f"{rule['alert']}.md").is_file(), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}


def test_every_alert_expression_is_balanced_and_uses_exported_metrics(
    alert_rules: list[dict[str, Any]],
) -> None:
    for rule in alert_rules:
        expression = str(rule["expr"])
        assert balanced(expression), rule["alert"]
        assert not unknown_series(expression), (rule["alert"], unknown_series(expression))
        assert re.fullmatch(r"[0-9]+[smh]", str(rule.get("for", "0s"))), rule["alert"]


def test_every_alert_is_scoped_to_the_release(alert_rules: list[dict[str, Any]]) -> None:
    for rule in alert_rules:
        expression = str(rule["expr"])
        for selector in re.findall(r"\b(?:pickup_[a-z_]+|up)\{([^}]*)\}", expression):
            assert 'namespace="pickup"' in selector, (rule["alert"], selector)


def test_thresholds_durations_and_severities_come_from_the_values(chart: Chart) -> None:
    rules = rules_of(
        chart.template(
            sets=[
                "prometheusRule.enabled=true",
                "prometheusRule.alerts.queueBacklog.threshold=500",
                "prometheusRule.alerts.queueBacklog.for=30m",
                "prometheusRule.alerts.queueBacklog.severity=critical",
                "prometheusRule.alerts.productOutOfStock.enabled=false",
            ]
        )
    )
    by_name = {rule["alert"]: rule for rule in rules}
    backlog = by_name["PickupQueueBacklog"]
    assert backlog["expr"].endswith("> 500")
    assert backlog["for"] == "30m"
    assert backlog["labels"]["severity"] == "critical"
    assert "PickupProductOutOfStock" not in by_name


def test_the_runbook_base_url_can_point_elsewhere(chart: Chart) -> None:
    own = rules_of(
        chart.template(
            sets=[
                "prometheusRule.enabled=true",
                "prometheusRule.runbookBaseUrl=https://wiki.example/ops/runbooks/",
            ]
        )
    )
    assert {rule["annotations"]["runbook_url"] for rule in own} == {
        f"https://wiki.example/ops/runbooks/{rule['alert']}.md" for rule in own
    }
    from_config = rules_of(
        chart.template(
            sets=["prometheusRule.enabled=true", "config.runbookBaseUrl=https://docs.example/rb"]
        )
    )
    assert all(
        rule["annotations"]["runbook_url"].startswith("https://docs.example/rb/Pickup")
        for rule in from_config
    )


@pytest.mark.parametrize(
    "setting",
    [
        "prometheusRule.alerts.highLatency.severity=page",
        "prometheusRule.alerts.highLatency.for=ten",
        "prometheusRule.alerts.highLatency.threshold=-1",
        "prometheusRule.alerts.noSuchAlert.enabled=true",
    ],
)
def test_the_schema_refuses_malformed_alert_values(chart: Chart, setting: str) -> None:
    with pytest.raises(RenderError):
        chart.template(sets=["prometheusRule.enabled=true", setting])


def test_the_eks_scenario_renders_the_rule_with_its_selector_labels(chart: Chart) -> None:
    (rule,) = of_kind(chart.scenario("eks"), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert yaml.safe_dump(rule)  # a plain YAML document, nothing left unrendered


# --- promtool: the rules load, and each alert fires when (and only when) it should --------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package `prometheus`)"
)
WORKER = 'namespace="pickup", service="pickup-worker"'
API = 'namespace="pickup", service="pickup-api"'
NOTIFIER = 'namespace="pickup", service="pickup-notifier"'


def _series(name: str, selector: str, values: str, **labels: str) -> dict[str, str]:
    extra = "".join(f', {key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{selector}{extra}}}", "values": values}


def _fires(minutes: int, alert: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": f"{minutes}m",
        "alertname": alert,
        "exp_alerts": [{"exp_labels": dict(item)} for item in labels],
    }


# Each case: the series Prometheus would scrape, and when which alert must (not) be firing.
ALERT_CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = {
    "a dead letter fires at once, another namespace never": (
        [
            _series("pickup_dlq_depth", WORKER, "0 0 1 1 1 1 1", queue="orders"),
            _series("pickup_dlq_depth", WORKER, "0x6", queue="notifications"),
            _series(
                "pickup_dlq_depth",
                'namespace="other", service="pickup-worker"',
                "9x6",
                queue="orders",
            ),
        ],
        [
            _fires(1, "PickupDeadLetters"),
            _fires(4, "PickupDeadLetters", {"queue": "orders", "severity": "critical"}),
        ],
    ),
    "a deep queue fires after ten minutes": (
        [
            _series("pickup_queue_depth", WORKER, "150x20", queue="orders"),
            _series("pickup_queue_depth", WORKER, "5x20", queue="notifications"),
            _series(
                "pickup_consumer_last_poll_timestamp_seconds", WORKER, "0+60x20", queue="orders"
            ),
            _series(
                "pickup_queue_messages_total", WORKER, "0+100x20", queue="orders", outcome="ack"
            ),
            _series(
                "pickup_queue_messages_total",
                NOTIFIER,
                "0+100x20",
                queue="notifications",
                outcome="ack",
            ),
        ],
        [
            _fires(5, "PickupQueueBacklog"),
            _fires(12, "PickupQueueBacklog", {"queue": "orders", "severity": "warning"}),
            _fires(12, "PickupWorkerNotConsuming"),
        ],
    ),
    "slow receipts fire the lag alert for that queue only": (
        [
            _series(
                "pickup_queue_message_lag_seconds_bucket", WORKER, "0x30", queue="orders", le="1"
            ),
            _series(
                "pickup_queue_message_lag_seconds_bucket", WORKER, "0x30", queue="orders", le="60"
            ),
            _series(
                "pickup_queue_message_lag_seconds_bucket",
                WORKER,
                "0+10x30",
                queue="orders",
                le="300",
            ),
            _series(
                "pickup_queue_message_lag_seconds_bucket",
                WORKER,
                "0+10x30",
                queue="orders",
                le="+Inf",
            ),
            _series(
                "pickup_queue_message_lag_seconds_bucket",
                NOTIFIER,
                "0+10x30",
                queue="notifications",
                le="1",
            ),
            _series(
                "pickup_queue_message_lag_seconds_bucket",
                NOTIFIER,
                "0+10x30",
                queue="notifications",
                le="60",
            ),
            _series(
                "pickup_queue_message_lag_seconds_bucket",
                NOTIFIER,
                "0+10x30",
                queue="notifications",
                le="300",
            ),
            _series(
                "pickup_queue_message_lag_seconds_bucket",
                NOTIFIER,
                "0+10x30",
                queue="notifications",
                le="+Inf",
            ),
        ],
        [
            _fires(8, "PickupQueueLagHigh"),
            _fires(20, "PickupQueueLagHigh", {"queue": "orders", "severity": "warning"}),
        ],
    ),
    "one answer in eleven a 5xx fires the error ratio": (
        [
            _series(
                "pickup_http_requests_total",
                API,
                "0+100x20",
                method="GET",
                route="/api/menu",
                status="200",
            ),
            _series(
                "pickup_http_requests_total",
                API,
                "0+10x20",
                method="POST",
                route="/api/orders",
                status="503",
            ),
        ],
        [
            _fires(3, "PickupHighErrorRatio"),
            _fires(10, "PickupHighErrorRatio", {"severity": "critical"}),
        ],
    ),
    "one answer in a hundred and one a 5xx is quiet": (
        [
            _series(
                "pickup_http_requests_total",
                API,
                "0+100x20",
                method="GET",
                route="/api/menu",
                status="200",
            ),
            _series(
                "pickup_http_requests_total",
                API,
                "0+1x20",
                method="GET",
                route="/api/menu",
                status="500",
            ),
        ],
        [_fires(15, "PickupHighErrorRatio")],
    ),
    "answers over a second at the p99 fire the latency alert": (
        [
            _series(
                "pickup_http_request_duration_seconds_bucket",
                API,
                "0x20",
                method="GET",
                route="/",
                le="0.5",
            ),
            _series(
                "pickup_http_request_duration_seconds_bucket",
                API,
                "0x20",
                method="GET",
                route="/",
                le="1.0",
            ),
            _series(
                "pickup_http_request_duration_seconds_bucket",
                API,
                "0+10x20",
                method="GET",
                route="/",
                le="2.5",
            ),
            _series(
                "pickup_http_request_duration_seconds_bucket",
                API,
                "0+10x20",
                method="GET",
                route="/",
                le="+Inf",
            ),
        ],
        [
            _fires(6, "PickupHighLatency"),
            _fires(15, "PickupHighLatency", {"severity": "warning"}),
        ],
    ),
    "failed sends fire the notification alert; skipped ones do not dilute it": (
        [
            _series(
                "pickup_notifications_total", NOTIFIER, "0+5x40", channel="email", result="failed"
            ),
            _series(
                "pickup_notifications_total", NOTIFIER, "0+10x40", channel="email", result="sent"
            ),
            _series(
                "pickup_notifications_total", NOTIFIER, "0+1000x40", channel="sms", result="skipped"
            ),
        ],
        [
            _fires(10, "PickupNotificationFailures"),
            _fires(30, "PickupNotificationFailures", {"severity": "warning"}),
        ],
    ),
    "ambiguous sends count as failures in the notification alert": (
        [
            _series(
                "pickup_notifications_total",
                NOTIFIER,
                "0+5x40",
                channel="email",
                result="ambiguous",
            ),
            _series(
                "pickup_notifications_total", NOTIFIER, "0+10x40", channel="email", result="sent"
            ),
        ],
        [
            _fires(10, "PickupNotificationFailures"),
            _fires(30, "PickupNotificationFailures", {"severity": "warning"}),
        ],
    ),
    "waiting messages with none handled, or a stale poll, fire the consumer alert": (
        [
            _series("pickup_queue_depth", WORKER, "5x20", queue="orders"),
            _series("pickup_queue_messages_total", WORKER, "7x20", queue="orders", outcome="ack"),
            _series(
                "pickup_consumer_last_poll_timestamp_seconds", WORKER, "0+60x20", queue="orders"
            ),
            _series("pickup_queue_depth", WORKER, "0x20", queue="notifications"),
            _series(
                "pickup_consumer_last_poll_timestamp_seconds",
                NOTIFIER,
                "0x20",
                queue="notifications",
            ),
        ],
        [
            _fires(4, "PickupWorkerNotConsuming"),
            _fires(
                16,
                "PickupWorkerNotConsuming",
                {"queue": "notifications", "severity": "critical"},
                {"queue": "orders", "severity": "critical"},
            ),
        ],
    ),
    "a consumer that polls and handles is quiet even with messages waiting": (
        [
            _series("pickup_queue_depth", WORKER, "30x20", queue="orders"),
            _series(
                "pickup_queue_messages_total", WORKER, "0+50x20", queue="orders", outcome="ack"
            ),
            _series(
                "pickup_consumer_last_poll_timestamp_seconds", WORKER, "0+60x20", queue="orders"
            ),
        ],
        [_fires(16, "PickupWorkerNotConsuming")],
    ),
    "a product out of stock fires an info alert": (
        [_series("pickup_out_of_stock_products", WORKER, "0 0 2 2 2 2 2 2 2 2")],
        [
            _fires(3, "PickupProductOutOfStock"),
            _fires(8, "PickupProductOutOfStock", {"severity": "info"}),
        ],
    ),
    "a target down, no api at all, and restarts fire their alerts": (
        [
            _series("up", WORKER, "1 1 0 0 0 0 0 0 0 0", instance="10.0.0.7:9000"),
            _series(
                "kube_pod_container_status_restarts_total",
                'namespace="pickup", pod="pickup-worker-1"',
                "0+1x20",
                container="worker",
            ),
        ],
        [
            _fires(
                8,
                "PickupTargetDown",
                {
                    "namespace": "pickup",
                    "service": "pickup-worker",
                    "instance": "10.0.0.7:9000",
                    "severity": "critical",
                },
            ),
            _fires(
                6,
                "PickupComponentMissing",
                {"severity": "critical"},  # absent() of an expression has no labels
            ),
            _fires(
                16,
                "PickupPodRestarting",
                {
                    "namespace": "pickup",
                    "pod": "pickup-worker-1",
                    "container": "worker",
                    "severity": "warning",
                },
            ),
        ],
    ),
}


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False, cwd=cwd)


@needs_promtool
def test_promtool_loads_the_rules_and_their_annotation_templates(
    chart: Chart, tmp_path: Path
) -> None:
    (rule,) = of_kind(chart.template(sets=["prometheusRule.enabled=true"]), "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    result = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_parses_every_dashboard_query(
    dashboards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expression}
        for dashboard in dashboards.values()
        for index, (_, expression) in enumerate(panel_expressions(dashboard))
    ]
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]})
    )
    result = _promtool("check", "rules", "queries.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("case", list(ALERT_CASES))
def test_each_alert_fires_when_and_only_when_it_should(
    alert_rules: list[dict[str, Any]], tmp_path: Path, case: str
) -> None:
    # Annotations are checked above; without them the expected alerts are just labels.
    rules = [
        {key: value for key, value in rule.items() if key != "annotations"} for rule in alert_rules
    ]
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "pickup", "rules": rules}]})
    )
    series, expectations = ALERT_CASES[case]
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": expectations}],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = _promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grafana dashboards -------------------------------------------------------------------


def test_every_dashboard_file_is_shipped_and_parses(dashboards: dict[str, dict[str, Any]]) -> None:
    files = {path.name for path in (CHART / "dashboards").glob("*.json")}
    assert set(dashboards) == files
    for dashboard in dashboards.values():
        assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]


def test_every_dashboard_query_uses_exported_metrics_and_the_variables(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in dashboards.items():
        variables = {item["name"] for item in dashboard["templating"]["list"]}
        assert {"datasource", "namespace", "job"} <= variables, name
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for title, expression in panel_expressions(dashboard):
            assert balanced(expression), title
            assert not unknown_series(expression), (title, unknown_series(expression))
            assert 'namespace="$namespace"' in expression and 'job=~"$job"' in expression, title


def test_the_overview_shows_every_metric_of_the_catalogue(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    shown = {
        EXPOSED[series]
        for _, expression in panel_expressions(dashboards["pickup-overview.json"])
        for series in series_in(expression)
        if series in EXPOSED
    }
    catalogue = {metric.describe()[0].name for metric in metrics.ALL}
    assert catalogue - shown == set()


def test_dashboard_panels_have_unique_ids_and_do_not_overlap(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in dashboards.items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        taken: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & taken, f"{name}: {panel['title']} overlaps another panel"
            taken |= cells


# --- Runbooks -----------------------------------------------------------------------------


def test_every_runbook_says_what_it_means_how_to_confirm_and_how_to_fix() -> None:
    for alert in [*ALERTS, *PROMETHEUS_ONLY_ALERTS]:
        text = (RUNBOOKS / f"{alert}.md").read_text()
        assert text.startswith(f"# {alert}"), alert
        for heading in ("## What it means", "## How to confirm", "## How to fix"):
            assert heading in text, f"{alert}: no {heading!r}"


@pytest.mark.parametrize(
    "alert",
    ["PickupQueueBacklog", "PickupQueueLagHigh", "PickupHighLatency", "PickupWorkerNotConsuming"],
)
def test_queue_and_latency_runbooks_explain_the_autoscaling(alert: str) -> None:
    text = (RUNBOOKS / f"{alert}.md").read_text()
    assert "(scaling.md)" in text
    assert ("KEDA" in text) or ("HPA" in text)


def test_the_runbook_index_links_every_runbook_and_the_scaling_page() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    pages = {path.name for path in RUNBOOKS.glob("*.md")} - {"README.md"}
    linked = set(re.findall(r"\]\(([A-Za-z]+\.md)\)", index))
    assert pages == linked
    assert "scaling.md" in linked
