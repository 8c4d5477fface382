"""``pickup bootstrap --monitoring``: the CloudWatch dashboard and alarms, idempotently.

The alert set is the one the chart's PrometheusRule carries (same names, same meaning; each
has a runbook in ``docs/runbooks/<Alert>.md``). Alarms read the ``Pickup`` namespace the
processes publish to (every datum carries the dimensions ``Service`` and ``Environment``) and
AWS's own ``AWS/SQS`` metrics for queue depth, message age and dead letters. Ratios and
"depth without progress" are metric math, so one alarm stands for one alert.

Alarm actions (and OK actions) go to an SNS topic: ``PICKUP_ALARM_TOPIC`` is either a name
under the resource prefix (default ``alarms``: bootstrap creates ``<prefix>-alarms``) or the
ARN of a topic you already page from. Not ``inventory-alerts``: the notifier consumes that one,
and an alarm about the notifier must not depend on the notifier.

Like the rest of bootstrap, every write is preceded by a read: a second run reports every
resource ``unchanged`` and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from pickup.adapters.aws import AWSClients
from pickup.provisioning import Action, Provisioner, Step
from pickup.settings import Settings

# --- The alert catalogue ------------------------------------------------------------------

# Alerts with a CloudWatch alarm as well as a Prometheus rule, and what each means.
ALERTS: dict[str, str] = {
    "PickupQueueBacklog": "A work queue holds more messages than its consumers keep up with.",
    "PickupQueueLagHigh": "Messages wait too long in a queue before a consumer takes them.",
    "PickupDeadLetters": "A message reached a dead-letter queue: it failed every retry.",
    "PickupHighErrorRatio": "Too many API answers are server errors (5xx).",
    "PickupHighLatency": "The API's 99th percentile answer time is too high.",
    "PickupNotificationFailures": "Too many emails or text messages fail to send.",
    "PickupWorkerNotConsuming": "A consumer stopped receiving, or a queue waits with no progress.",
    "PickupProductOutOfStock": "A product has nothing left to sell.",
}
# Prometheus-only alerts (about pods and scraping, which CloudWatch does not see).
PROMETHEUS_ONLY_ALERTS: dict[str, str] = {
    "PickupTargetDown": "Prometheus cannot scrape a pickup pod.",
    "PickupComponentMissing": "No api pod answers at all.",
    "PickupPodRestarting": "A pickup pod keeps restarting.",
}

# The metrics the CloudWatch publisher sends to the ``Pickup`` namespace, and which process
# (the ``Service`` dimension) sends each. Kept in step with
# pickup.observability.cloudwatch.METRIC_NAMES by tests/integration/test_monitoring.py.
PUBLISHED_BY: dict[str, tuple[str, ...]] = {
    "RequestCount": ("api",),
    "ServerErrors": ("api",),
    "RequestLatency": ("api",),
    "OrdersPlaced": ("api",),
    "OrdersConfirmed": ("worker",),
    "OrdersRejected": ("worker",),
    "OrdersCancelled": ("api",),
    "OrdersExpired": ("worker",),
    "CheckoutStockConflicts": ("api",),
    "PlacedToConfirmed": ("worker",),
    "MessagesHandled": ("worker", "notifier"),
    "MessagesFailed": ("worker", "notifier"),
    "NotificationsSent": ("notifier",),
    "NotificationsFailed": ("notifier",),
    "OutOfStockProducts": ("worker",),
    "LowStockProducts": ("worker",),
    "ActiveReservations": ("worker",),
    "OutboxPending": ("api",),
}
SQS_NAMESPACE = "AWS/SQS"
PERIOD = 60


def runbook_url(settings: Settings, alert: str) -> str:
    return f"{settings.runbook_base_url.rstrip('/')}/{alert}.md"


def alarm_name(settings: Settings, alert: str) -> str:
    return f"{settings.resource_prefix}-{alert}"


def dashboard_name(settings: Settings) -> str:
    return f"{settings.resource_prefix}-overview"


# --- Metric queries -----------------------------------------------------------------------


def _dimensions(settings: Settings, service: str) -> list[dict[str, str]]:
    return [
        {"Name": "Service", "Value": service},
        {"Name": "Environment", "Value": settings.env.value},
    ]


def _pickup_query(
    settings: Settings, query_id: str, metric: str, service: str, stat: str
) -> dict[str, Any]:
    if service not in PUBLISHED_BY[metric]:
        raise ValueError(f"{metric} is not published by {service}")
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": settings.cloudwatch_namespace,
                "MetricName": metric,
                "Dimensions": _dimensions(settings, service),
            },
            "Period": PERIOD,
            "Stat": stat,
        },
        "ReturnData": False,
    }


def _sqs_query(query_id: str, metric: str, queue: str, stat: str = "Maximum") -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": SQS_NAMESPACE,
                "MetricName": metric,
                "Dimensions": [{"Name": "QueueName", "Value": queue}],
            },
            "Period": PERIOD,
            "Stat": stat,
        },
        "ReturnData": False,
    }


def _expression(query_id: str, expression: str, label: str) -> dict[str, Any]:
    return {"Id": query_id, "Expression": expression, "Label": label, "ReturnData": True}


def _returned(query: dict[str, Any]) -> dict[str, Any]:
    return {**query, "ReturnData": True}


class MonitoringConfigError(ValueError):
    """The monitoring settings name something that does not exist; the message says what."""


# --- Alarms -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmSpec:
    alert: str
    threshold: float
    queries: list[dict[str, Any]]
    periods: int  # evaluation periods of PERIOD seconds
    datapoints: int | None = None  # of `periods` that must breach; default all of them
    comparison: str = "GreaterThanThreshold"
    treat_missing: str = "notBreaching"
    detail: str = ""

    def request(self, settings: Settings, topic_arn: str) -> dict[str, Any]:
        """The PutMetricAlarm request for this alarm."""
        description = " ".join(
            part
            for part in (
                ALERTS[self.alert],
                self.detail,
                f"Runbook: {runbook_url(settings, self.alert)}",
            )
            if part
        )
        return {
            "AlarmName": alarm_name(settings, self.alert),
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": [topic_arn],
            "OKActions": [topic_arn],
            "EvaluationPeriods": self.periods,
            "DatapointsToAlarm": self.datapoints or self.periods,
            "Threshold": float(self.threshold),
            "ComparisonOperator": self.comparison,
            "TreatMissingData": self.treat_missing,
            "Metrics": self.queries,
        }


def alarm_specs(settings: Settings) -> list[AlarmSpec]:
    """One alarm per alert of :data:`ALERTS`; ``PICKUP_ALARM_THRESHOLDS`` overrides thresholds."""
    overrides = settings.alarm_thresholds
    unknown = sorted(set(overrides) - set(ALERTS))
    if unknown:
        raise MonitoringConfigError(
            f"PICKUP_ALARM_THRESHOLDS names no alarm: {', '.join(unknown)} "
            f"(alarms: {', '.join(ALERTS)})"
        )
    return [
        replace(spec, threshold=overrides[spec.alert]) if spec.alert in overrides else spec
        for spec in _default_alarm_specs(settings)
    ]


def _default_alarm_specs(settings: Settings) -> list[AlarmSpec]:
    """The alarms with the chart's default thresholds (the queue age excepted, see its runbook)."""
    names = settings.names
    work_queues = [names.order_queue, names.notifications_queue]
    dead_letter_queues = [names.order_dlq, names.notifications_dlq]
    visible = "ApproximateNumberOfMessagesVisible"

    def pickup(query_id: str, metric: str, service: str, stat: str = "Sum") -> dict[str, Any]:
        return _pickup_query(settings, query_id, metric, service, stat)

    def worst(prefix: str, metric: str, queues: list[str], label: str) -> list[dict[str, Any]]:
        queries = [_sqs_query(f"{prefix}{i}", metric, q) for i, q in enumerate(queues)]
        ids = ", ".join(query["Id"] for query in queries)
        return [*queries, _expression(prefix, f"MAX([{ids}])", label)]

    return [
        AlarmSpec(
            "PickupQueueBacklog",
            threshold=100,
            periods=10,
            queries=worst("depth", visible, work_queues, "most visible messages in a work queue"),
            detail=f"Queues: {', '.join(work_queues)}.",
        ),
        AlarmSpec(
            "PickupQueueLagHigh",
            threshold=300,
            periods=10,
            queries=worst(
                "age", "ApproximateAgeOfOldestMessage", work_queues, "oldest message age (s)"
            ),
            detail=f"Queues: {', '.join(work_queues)}.",
        ),
        AlarmSpec(
            "PickupDeadLetters",
            threshold=0,
            periods=1,
            queries=worst("dead", visible, dead_letter_queues, "messages in a dead-letter queue"),
            detail=f"Dead-letter queues: {', '.join(dead_letter_queues)}.",
        ),
        AlarmSpec(
            "PickupHighErrorRatio",
            threshold=0.05,
            periods=5,
            queries=[
                pickup("errors", "ServerErrors", "api"),
                pickup("requests", "RequestCount", "api"),
                _expression("ratio", "FILL(errors, 0) / requests", "5xx ratio"),
            ],
        ),
        AlarmSpec(
            "PickupHighLatency",
            threshold=1000,
            periods=10,
            queries=[_returned(pickup("p99", "RequestLatency", "api", "p99"))],
            detail="Threshold in milliseconds.",
        ),
        AlarmSpec(
            "PickupNotificationFailures",
            threshold=0.1,
            periods=15,
            queries=[
                pickup("failed", "NotificationsFailed", "notifier"),
                pickup("sent", "NotificationsSent", "notifier"),
                _expression(
                    "ratio",
                    "IF(FILL(sent, 0) + FILL(failed, 0) > 0, "
                    "FILL(failed, 0) / (FILL(sent, 0) + FILL(failed, 0)), 0)",
                    "notification failure ratio",
                ),
            ],
        ),
        AlarmSpec(
            "PickupWorkerNotConsuming",
            threshold=0,
            periods=10,
            queries=[
                _sqs_query("orders", visible, names.order_queue),
                pickup("worker", "MessagesHandled", "worker"),
                _sqs_query("notes", visible, names.notifications_queue),
                pickup("notifier", "MessagesHandled", "notifier"),
                _expression(
                    "stalled",
                    "IF(orders > 0 AND FILL(worker, 0) == 0, 1, 0)"
                    " + IF(notes > 0 AND FILL(notifier, 0) == 0, 1, 0)",
                    "queues waiting with nothing handled",
                ),
            ],
            detail="Worker: order queue; notifier: notifications queue.",
        ),
        AlarmSpec(
            "PickupProductOutOfStock",
            threshold=0,
            periods=5,
            queries=[_returned(pickup("out", "OutOfStockProducts", "worker", "Maximum"))],
        ),
    ]


# --- Dashboard ----------------------------------------------------------------------------

WIDTH, HEIGHT, PER_ROW = 8, 6, 3


@dataclass
class _Layout:
    """Places widgets left to right, three to a row, each section starting a new row."""

    widgets: list[dict[str, Any]] = field(default_factory=list)
    y: int = 0
    column: int = 0

    def section(self, title: str) -> None:
        if self.column:
            self.y += HEIGHT
            self.column = 0
        self.widgets.append(
            {
                "type": "text",
                "x": 0,
                "y": self.y,
                "width": 24,
                "height": 1,
                "properties": {"markdown": f"## {title}"},
            }
        )
        self.y += 1

    def add(self, widget: dict[str, Any], width: int = WIDTH) -> None:
        if self.column + width > 24:
            self.y += HEIGHT
            self.column = 0
        self.widgets.append(
            {**widget, "x": self.column, "y": self.y, "width": width, "height": HEIGHT}
        )
        self.column += width


def _graph(
    settings: Settings, title: str, metrics: Iterable[list[Any]], stat: str = "Sum", **extra: Any
) -> dict[str, Any]:
    properties = {
        "title": title,
        "view": "timeSeries",
        "stacked": False,
        "region": settings.aws_region,
        "period": PERIOD,
        "stat": stat,
        "metrics": list(metrics),
        **extra,
    }
    return {"type": "metric", "properties": properties}


def dashboard_body(settings: Settings, alarm_arns: list[str]) -> dict[str, Any]:
    ns, env = settings.cloudwatch_namespace, settings.env.value
    names = settings.names

    def m(metric: str, service: str, **options: Any) -> list[Any]:
        if service not in PUBLISHED_BY[metric]:
            raise ValueError(f"{metric} is not published by {service}")
        row: list[Any] = [ns, metric, "Service", service, "Environment", env]
        return [*row, options] if options else row

    def q(metric: str, queue: str, **options: Any) -> list[Any]:
        row: list[Any] = [SQS_NAMESPACE, metric, "QueueName", queue]
        return [*row, options] if options else row

    def ratio(expression: str, label: str) -> list[Any]:
        return [{"expression": expression, "label": label, "id": "ratio"}]

    layout = _Layout()
    layout.section("Alarms")
    layout.add(
        {"type": "alarm", "properties": {"title": "pickup alarms", "alarms": sorted(alarm_arns)}},
        width=24,
    )

    layout.section("Orders")
    layout.add(
        _graph(
            settings,
            "Orders per minute",
            [
                m("OrdersPlaced", "api"),
                m("OrdersConfirmed", "worker"),
                m("OrdersRejected", "worker"),
                m("OrdersCancelled", "api"),
                m("OrdersExpired", "worker"),
            ],
        )
    )
    layout.add(_graph(settings, "Checkout stock conflicts", [m("CheckoutStockConflicts", "api")]))
    layout.add(
        _graph(
            settings,
            "Placed to confirmed (s)",
            [
                m("PlacedToConfirmed", "worker", stat="p50", label="p50"),
                m("PlacedToConfirmed", "worker", stat="p95", label="p95"),
            ],
        )
    )

    layout.section("HTTP (api)")
    layout.add(
        _graph(settings, "Requests and 5xx", [m("RequestCount", "api"), m("ServerErrors", "api")])
    )
    layout.add(
        _graph(
            settings,
            "5xx ratio",
            [
                ratio("FILL(errors, 0) / requests", "5xx ratio"),
                m("ServerErrors", "api", id="errors", visible=False),
                m("RequestCount", "api", id="requests", visible=False),
            ],
        )
    )
    layout.add(
        _graph(
            settings,
            "Latency (ms)",
            [
                m("RequestLatency", "api", stat="p50", label="p50"),
                m("RequestLatency", "api", stat="p99", label="p99"),
            ],
        )
    )

    layout.section("Queues")
    visible = "ApproximateNumberOfMessagesVisible"
    layout.add(
        _graph(
            settings,
            "Visible messages",
            [q(visible, names.order_queue), q(visible, names.notifications_queue)],
            stat="Maximum",
        )
    )
    layout.add(
        _graph(
            settings,
            "Oldest message age (s)",
            [
                q("ApproximateAgeOfOldestMessage", names.order_queue),
                q("ApproximateAgeOfOldestMessage", names.notifications_queue),
            ],
            stat="Maximum",
        )
    )
    layout.add(
        _graph(
            settings,
            "Dead-letter queues",
            [q(visible, names.order_dlq), q(visible, names.notifications_dlq)],
            stat="Maximum",
        )
    )
    layout.add(
        _graph(
            settings,
            "Messages handled and failed",
            [
                m("MessagesHandled", "worker"),
                m("MessagesFailed", "worker"),
                m("MessagesHandled", "notifier"),
                m("MessagesFailed", "notifier"),
            ],
        )
    )

    layout.section("Notifications")
    layout.add(
        _graph(
            settings,
            "Notifications sent and failed",
            [m("NotificationsSent", "notifier"), m("NotificationsFailed", "notifier")],
        )
    )
    layout.add(
        _graph(
            settings,
            "Notification failure ratio",
            [
                ratio("FILL(failed, 0) / (FILL(sent, 0) + FILL(failed, 0))", "failure ratio"),
                m("NotificationsFailed", "notifier", id="failed", visible=False),
                m("NotificationsSent", "notifier", id="sent", visible=False),
            ],
        )
    )

    layout.section("Stock")
    layout.add(
        _graph(
            settings,
            "Products low and out of stock",
            [m("LowStockProducts", "worker"), m("OutOfStockProducts", "worker")],
            stat="Maximum",
        )
    )
    layout.add(
        _graph(
            settings,
            "Active reservations and outbox",
            [m("ActiveReservations", "worker"), m("OutboxPending", "api")],
            stat="Maximum",
        )
    )
    return {"start": "-PT6H", "periodOverride": "inherit", "widgets": layout.widgets}


# --- Provisioning -------------------------------------------------------------------------


def _same(wanted: Any, current: Any) -> bool:
    """Whether ``current`` (as AWS describes it) holds everything ``wanted`` sets."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(
            _same(value, current.get(key)) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(current, list)
            and len(wanted) == len(current)
            and all(_same(w, c) for w, c in zip(wanted, current, strict=True))
        )
    if isinstance(wanted, float) and isinstance(current, int | float):
        return float(current) == wanted
    return bool(wanted == current)


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class MonitoringProvisioner(Provisioner):
    async def provision(self) -> list[Step]:
        specs = alarm_specs(self.settings)  # refuses unknown alarm names before any write
        steps, topic_arn = await self._alarm_topic()
        cloudwatch = await self.clients.client("cloudwatch")
        requests = [spec.request(self.settings, topic_arn) for spec in specs]
        current = await self._alarms([request["AlarmName"] for request in requests])
        for request in requests:
            name = request["AlarmName"]
            existing = current.get(name)
            if existing is not None and _same(request, existing):
                steps.append(Step("cloudwatch alarm", name, Action.UNCHANGED))
                continue
            await cloudwatch.put_metric_alarm(**request)
            action = Action.CREATED if existing is None else Action.UPDATED
            steps.append(Step("cloudwatch alarm", name, action))
        if any(step.action is not Action.UNCHANGED for step in steps):
            current = await self._alarms([request["AlarmName"] for request in requests])
        steps.append(await self._dashboard([alarm["AlarmArn"] for alarm in current.values()]))
        return steps

    async def _alarm_topic(self) -> tuple[list[Step], str]:
        configured = self.settings.alarm_topic
        if configured.startswith("arn:"):
            return [], configured
        step, arn = await self._topic(f"{self.settings.resource_prefix}-{configured}")
        return [step], arn

    async def _alarms(self, names: list[str]) -> dict[str, dict[str, Any]]:
        cloudwatch = await self.clients.client("cloudwatch")
        found: dict[str, dict[str, Any]] = {}
        paginator = cloudwatch.get_paginator("describe_alarms")
        async for page in paginator.paginate(AlarmNames=names, AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                found[alarm["AlarmName"]] = alarm
        return found

    async def _dashboard(self, alarm_arns: list[str]) -> Step:
        cloudwatch = await self.clients.client("cloudwatch")
        name = dashboard_name(self.settings)
        body = dashboard_body(self.settings, alarm_arns)
        try:
            current = (await cloudwatch.get_dashboard(DashboardName=name))["DashboardBody"]
        except ClientError as error:
            if _error_code(error) not in {"ResourceNotFound", "DashboardNotFoundError"}:
                raise
            current = None
        if current is not None and json.loads(current) == body:
            return Step("cloudwatch dashboard", name, Action.UNCHANGED)
        response = await cloudwatch.put_dashboard(
            DashboardName=name, DashboardBody=json.dumps(body)
        )
        problems = response.get("DashboardValidationMessages") or []
        if problems:
            raise ValueError(f"CloudWatch refused parts of dashboard {name}: {problems}")
        return Step(
            "cloudwatch dashboard", name, Action.CREATED if current is None else Action.UPDATED
        )


async def bootstrap_monitoring(settings: Settings) -> list[Step]:
    async with AWSClients(settings) as clients:
        return await MonitoringProvisioner(settings, clients).provision()
