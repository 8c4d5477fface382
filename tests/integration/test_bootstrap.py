from __future__ import annotations

import json
from typing import Any

from pickup.adapters.aws import AWSClients
from pickup.provisioning import Action, bootstrap, summary
from pickup.settings import Settings


async def queue_url(aws: AWSClients, name: str) -> str:
    sqs = await aws.client("sqs")
    return (await sqs.get_queue_url(QueueName=name))["QueueUrl"]


async def test_bootstrap_creates_every_resource(settings: Settings, aws: AWSClients) -> None:
    steps = await bootstrap(settings)

    created = {(step.kind, step.name) for step in steps if step.action is Action.CREATED}
    names = settings.names
    assert ("dynamodb table", names.products_table) in created
    for queue in (
        names.order_queue,
        names.order_dlq,
        names.notifications_queue,
        names.notifications_dlq,
    ):
        assert ("sqs queue", queue) in created
    for topic in names.topics:
        assert ("sns topic", topic) in created

    table = (await (await aws.client("dynamodb")).describe_table(TableName=names.products_table))[
        "Table"
    ]
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    sqs = await aws.client("sqs")
    attributes = (
        await sqs.get_queue_attributes(
            QueueUrl=await queue_url(aws, names.order_queue), AttributeNames=["All"]
        )
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":" + names.order_dlq)
    assert int(redrive["maxReceiveCount"]) == settings.sqs_max_receive_count

    ses = await aws.client("ses")
    assert settings.ses_sender in (await ses.list_identities())["Identities"]
    ssm = await aws.client("ssm")
    parameter = await ssm.get_parameter(Name=f"/pickup/{settings.resource_prefix}/resource_prefix")
    assert parameter["Parameter"]["Value"] == settings.resource_prefix


async def test_bootstrap_twice_changes_nothing_and_says_so(settings: Settings) -> None:
    await bootstrap(settings)
    second = await bootstrap(settings)
    assert {step.action for step in second} == {Action.UNCHANGED}
    assert summary(second).startswith("Nothing to do")


async def test_bootstrap_repairs_a_queue_whose_redrive_drifted(
    make_settings: Any, aws: AWSClients, settings: Settings
) -> None:
    await bootstrap(settings)
    stricter = make_settings(resource_prefix=settings.resource_prefix, sqs_max_receive_count=2)
    steps = await bootstrap(stricter)
    updated = [step.name for step in steps if step.action is Action.UPDATED]
    assert updated == [
        settings.names.order_queue,
        settings.names.notifications_queue,
        f"/pickup/{settings.resource_prefix}/sqs_max_receive_count",
    ]


async def test_both_topics_deliver_to_the_notifications_queue_with_attributes(
    settings: Settings, aws: AWSClients
) -> None:
    await bootstrap(settings)
    sns = await aws.client("sns")
    sqs = await aws.client("sqs")
    topics = {
        t["TopicArn"].rsplit(":", 1)[-1]: t["TopicArn"] for t in (await sns.list_topics())["Topics"]
    }
    for topic in settings.names.topics:
        await sns.publish(
            TopicArn=topics[topic],
            Message=json.dumps({"topic": topic}),
            MessageAttributes={"event": {"DataType": "String", "StringValue": "test.event"}},
        )
    url = await queue_url(aws, settings.names.notifications_queue)
    bodies, attributes = [], []
    for _ in range(5):
        received = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        )
        for message in received.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            attributes.append(message["MessageAttributes"]["event"]["StringValue"])
        if len(bodies) == 2:
            break
    assert sorted(body["topic"] for body in bodies) == sorted(settings.names.topics)
    assert attributes == ["test.event", "test.event"]


async def test_a_message_failing_too_often_lands_in_the_dead_letter_queue(
    make_settings: Any, aws: AWSClients
) -> None:
    settings = make_settings(sqs_max_receive_count=2, sqs_visibility_timeout_seconds=0)
    await bootstrap(settings)
    sqs = await aws.client("sqs")
    url = await queue_url(aws, settings.names.order_queue)
    await sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(3):
        await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    dead = await sqs.receive_message(
        QueueUrl=await queue_url(aws, settings.names.order_dlq), WaitTimeSeconds=1
    )
    assert [message["Body"] for message in dead["Messages"]] == ["poison"]
