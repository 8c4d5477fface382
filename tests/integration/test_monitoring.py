"""``pickup bootstrap --monitoring`` against the AWS emulator: dashboard, alarms, their topic.

The emulator (moto) stores dashboards and alarms, metric math included, and answers
GetDashboard/DescribeAlarms with what was stored; it evaluates neither the dashboard's nor the
alarms' expressions. These tests therefore check what was configured: every metric exists
(``Pickup`` metrics in the CloudWatch publisher's METRIC_NAMES, queue metrics of our queues),
every alarm carries its runbook and notifies the topic, and a second run changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from pickup.adapters.aws import AWSClients
from pickup.cli.main import main
from pickup.observability.cloudwatch import METRIC_NAMES, SERVICES, ZERO_FILLED
from pickup.observability.monitoring import (
    ALERTS,
    PUBLISHED_BY,
    MonitoringConfigError,
    alarm_name,
    bootstrap_monitoring,
    dashboard_name,
    runbook_url,
)
from pickup.provisioning import Action, bootstrap
from pickup.settings import Settings
from tests.helpers import pickup_environment

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
SQS_METRICS = {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}


def _boto(settings: Settings, service: str) -> Any:
    return boto3.client(service, **settings.aws_client_kwargs())


@pytest.fixture
def monitored(settings: Settings) -> Iterator[Settings]:
    """The test's settings; its dashboard and alarms are deleted afterwards."""
    yield settings
    cloudwatch = _boto(settings, "cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=settings.resource_prefix + "-")
    names = [alarm["AlarmName"] for alarm in alarms["MetricAlarms"]]
    if names:
        cloudwatch.delete_alarms(AlarmNames=names)
    cloudwatch.delete_dashboards(DashboardNames=[dashboard_name(settings)])


async def _alarms(aws: AWSClients, settings: Settings) -> dict[str, dict[str, Any]]:
    cloudwatch = await aws.client("cloudwatch")
    found = await cloudwatch.describe_alarms(AlarmNamePrefix=settings.resource_prefix + "-")
    return {alarm["AlarmName"]: alarm for alarm in found["MetricAlarms"]}


async def _topic_arns(aws: AWSClients) -> set[str]:
    sns = await aws.client("sns")
    return {topic["TopicArn"] for topic in (await sns.list_topics())["Topics"]}


def _check_pickup_metric(settings: Settings, metric: dict[str, Any]) -> str:
    """The Service of a ``Pickup`` metric, after checking its name and dimensions."""
    assert metric["Namespace"] == settings.cloudwatch_namespace
    assert metric["MetricName"] in METRIC_NAMES, metric["MetricName"]
    dimensions = {item["Name"]: item["Value"] for item in metric["Dimensions"]}
    assert set(dimensions) == {"Service", "Environment"}, metric
    assert dimensions["Environment"] == settings.env.value
    assert dimensions["Service"] in SERVICES
    return dimensions["Service"]


def test_the_catalogue_of_published_metrics_is_the_publishers() -> None:
    assert set(PUBLISHED_BY) == METRIC_NAMES
    for metric, services in PUBLISHED_BY.items():
        assert set(services) <= set(SERVICES), metric
        zero_filled_by = {service for service, names in ZERO_FILLED.items() if metric in names}
        if zero_filled_by:
            # A count is read from the processes that send it every period, zero included.
            assert set(services) == zero_filled_by, metric


async def test_bootstrap_creates_one_alarm_per_alert_with_its_runbook_and_topic(
    monitored: Settings, aws: AWSClients
) -> None:
    settings = monitored
    await bootstrap(settings)  # the queues the alarms watch
    steps = await bootstrap_monitoring(settings)

    assert {step.action for step in steps} == {Action.CREATED}
    alarms = await _alarms(aws, settings)
    assert set(alarms) == {alarm_name(settings, alert) for alert in ALERTS}
    topic = f"{settings.resource_prefix}-alarms"
    (topic_arn,) = [arn for arn in await _topic_arns(aws) if arn.endswith(":" + topic)]
    sqs = await aws.client("sqs")
    queues = {url.rsplit("/", 1)[-1] for url in (await sqs.list_queues())["QueueUrls"]}

    for alert in ALERTS:
        alarm = alarms[alarm_name(settings, alert)]
        url = runbook_url(settings, alert)
        assert url in alarm["AlarmDescription"]
        assert (RUNBOOKS / url.rsplit("/", 1)[-1]).is_file()
        assert alarm["AlarmActions"] == [topic_arn] and alarm["OKActions"] == [topic_arn]
        assert alarm["ActionsEnabled"]
        returned = [query for query in alarm["Metrics"] if query["ReturnData"]]
        assert len(returned) == 1, alert
        for query in alarm["Metrics"]:
            if "MetricStat" not in query:
                continue
            metric = query["MetricStat"]["Metric"]
            if metric["Namespace"] == "AWS/SQS":
                assert metric["MetricName"] in SQS_METRICS
                (dimension,) = metric["Dimensions"]
                assert dimension["Name"] == "QueueName" and dimension["Value"] in queues
            else:
                service = _check_pickup_metric(settings, metric)
                assert service in PUBLISHED_BY[metric["MetricName"]]


async def test_every_expression_names_only_queries_of_its_alarm(
    monitored: Settings, aws: AWSClients
) -> None:
    settings = monitored
    await bootstrap(settings)
    await bootstrap_monitoring(settings)
    for name, alarm in (await _alarms(aws, settings)).items():
        ids = {query["Id"] for query in alarm["Metrics"]}
        for query in alarm["Metrics"]:
            if "Expression" in query:
                words = set(query["Expression"].replace("(", " ").replace(")", " ").split())
                named = {word.strip("[],") for word in words if word.strip("[],").islower()}
                assert named <= ids, (name, named - ids)


async def test_the_dashboard_shows_only_published_and_queue_metrics(
    monitored: Settings, aws: AWSClients
) -> None:
    settings = monitored
    await bootstrap(settings)
    await bootstrap_monitoring(settings)
    cloudwatch = await aws.client("cloudwatch")
    body = json.loads(
        (await cloudwatch.get_dashboard(DashboardName=dashboard_name(settings)))["DashboardBody"]
    )
    names = settings.names
    queues = {
        names.order_queue,
        names.notifications_queue,
        names.order_dlq,
        names.notifications_dlq,
    }
    shown: set[str] = set()
    alarm_widgets = []
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "alarm":
            alarm_widgets.append(widget)
        if widget["type"] != "metric":
            continue
        rows = widget["properties"]["metrics"]
        ids = {row[-1]["id"] for row in rows if isinstance(row[-1], dict) and "id" in row[-1]}
        for row in rows:
            if isinstance(row[0], dict):  # an expression row: it names queries of this widget
                words = row[0]["expression"].replace("(", " ").replace(")", " ").split()
                named = {word.strip("[],") for word in words if word.strip("[],").islower()}
                assert named <= ids, (widget["properties"]["title"], named - ids)
                continue
            if isinstance(row[-1], dict):  # rendering options (id, stat, label, visible)
                row = row[:-1]
            namespace, metric, *rest = row
            dimensions = dict(zip(rest[0::2], rest[1::2], strict=True))
            if namespace == "AWS/SQS":
                assert metric in SQS_METRICS and dimensions["QueueName"] in queues
            else:
                _check_pickup_metric(
                    settings,
                    {
                        "Namespace": namespace,
                        "MetricName": metric,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    },
                )
                shown.add(metric)
    assert shown == METRIC_NAMES
    (alarm_widget,) = alarm_widgets
    arns = {alarm["AlarmArn"] for alarm in (await _alarms(aws, settings)).values()}
    assert set(alarm_widget["properties"]["alarms"]) == arns


async def test_a_second_run_changes_nothing_and_a_drifted_alarm_is_put_back(
    monitored: Settings, aws: AWSClients
) -> None:
    settings = monitored
    await bootstrap(settings)
    await bootstrap_monitoring(settings)
    second = await bootstrap_monitoring(settings)
    assert {step.action for step in second} == {Action.UNCHANGED}

    cloudwatch = await aws.client("cloudwatch")
    name = alarm_name(settings, "PickupQueueBacklog")
    (alarm,) = (await cloudwatch.describe_alarms(AlarmNames=[name]))["MetricAlarms"]
    keys = (
        "AlarmName AlarmDescription ActionsEnabled AlarmActions OKActions EvaluationPeriods "
        "DatapointsToAlarm ComparisonOperator TreatMissingData Metrics"
    ).split()
    await cloudwatch.put_metric_alarm(**{key: alarm[key] for key in keys}, Threshold=5000.0)

    third = await bootstrap_monitoring(settings)
    changed = [(step.name, step.action) for step in third if step.action is not Action.UNCHANGED]
    assert changed == [(name, Action.UPDATED)]
    (repaired,) = (await cloudwatch.describe_alarms(AlarmNames=[name]))["MetricAlarms"]
    assert repaired["Threshold"] == 100.0


async def test_alarms_can_notify_an_existing_topic_given_by_arn(
    make_settings: Callable[..., Settings], aws: AWSClients
) -> None:
    sns = await aws.client("sns")
    base = make_settings()
    pager = (await sns.create_topic(Name=f"{base.resource_prefix}-pager"))["TopicArn"]
    settings = make_settings(alarm_topic=pager)
    try:
        steps = await bootstrap_monitoring(settings)
        assert not [step for step in steps if step.kind == "sns topic"]
        for alarm in (await _alarms(aws, settings)).values():
            assert alarm["AlarmActions"] == [pager]
        own_topic = f":{settings.resource_prefix}-alarms"
        assert not [arn for arn in await _topic_arns(aws) if arn.endswith(own_topic)]
    finally:
        cloudwatch = await aws.client("cloudwatch")
        alarms = await _alarms(aws, settings)
        if alarms:
            await cloudwatch.delete_alarms(AlarmNames=list(alarms))
        await cloudwatch.delete_dashboards(DashboardNames=[dashboard_name(settings)])


def test_the_cli_flag_creates_the_monitoring_and_a_second_run_has_nothing_to_do(
    monitored: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = monitored
    for name, value in pickup_environment(settings).items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    first = runner.invoke(main, ["bootstrap", "--monitoring"])
    assert first.exit_code == 0, first.output
    assert (
        f"created    cloudwatch alarm {alarm_name(settings, 'PickupDeadLetters')}" in first.output
    )
    assert f"created    cloudwatch dashboard {dashboard_name(settings)}" in first.output

    second = runner.invoke(main, ["bootstrap", "--monitoring"])
    assert second.exit_code == 0, second.output
    assert second.output.strip().splitlines()[-1].startswith("Nothing to do")

    without = runner.invoke(main, ["bootstrap"])
    assert "cloudwatch" not in without.output

    monkeypatch.setenv("PICKUP_ALARM_THRESHOLDS", '{"PickupNoSuchAlarm": 1}')
    refused = runner.invoke(main, ["bootstrap", "--monitoring"])
    assert refused.exit_code == 2
    assert "PICKUP_ALARM_THRESHOLDS names no alarm: PickupNoSuchAlarm" in refused.output


async def test_thresholds_can_be_set_per_alarm_and_unknown_names_are_refused(
    make_settings: Callable[..., Settings], aws: AWSClients
) -> None:
    settings = make_settings(
        alarm_thresholds={"PickupQueueBacklog": 500, "PickupHighLatency": 2000}
    )
    try:
        await bootstrap_monitoring(settings)
        alarms = await _alarms(aws, settings)
        assert alarms[alarm_name(settings, "PickupQueueBacklog")]["Threshold"] == 500.0
        assert alarms[alarm_name(settings, "PickupHighLatency")]["Threshold"] == 2000.0
        assert alarms[alarm_name(settings, "PickupDeadLetters")]["Threshold"] == 0.0
    finally:
        cloudwatch = await aws.client("cloudwatch")
        alarms = await _alarms(aws, settings)
        if alarms:
            await cloudwatch.delete_alarms(AlarmNames=list(alarms))
        await cloudwatch.delete_dashboards(DashboardNames=[dashboard_name(settings)])
    typo = make_settings(alarm_topic="typo-alarms", alarm_thresholds={"PickupQueueBacklogg": 1})
    with pytest.raises(MonitoringConfigError, match="PickupQueueBacklogg"):
        await bootstrap_monitoring(typo)
    assert not [
        arn
        for arn in await _topic_arns(aws)
        if arn.endswith(":" + typo.resource_prefix + "-typo-alarms")
    ]
