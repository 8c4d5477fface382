"""``pickup bootstrap``: create the AWS resources pickup needs, idempotently, on any endpoint.

Each step looks before it writes, so a second run changes nothing and reports every resource
as ``unchanged``. Works the same against moto (local, tests, kind) and real AWS.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from enum import StrEnum

from botocore.exceptions import ClientError

from pickup.adapters.aws import AWSClients
from pickup.adapters.dynamodb import products_table_definition
from pickup.settings import Settings


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    PURGED = "purged"


@dataclass(frozen=True)
class Step:
    kind: str
    name: str
    action: Action

    def __str__(self) -> str:
        return f"{self.action.value:<9}  {self.kind:<16} {self.name}"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def ssm_base_path(settings: Settings) -> str:
    return (settings.ssm_path or f"/pickup/{settings.resource_prefix}/").rstrip("/") + "/"


# Non-secret settings published to SSM so a process configured with PICKUP_SSM_PATH alone
# agrees with the one that provisioned the resources. Secrets are never written here.
PUBLISHED_SETTINGS = ("resource_prefix", "aws_region", "ses_sender", "sqs_max_receive_count")


class Provisioner:
    def __init__(self, settings: Settings, clients: AWSClients) -> None:
        self.settings = settings
        self.names = settings.names
        self.clients = clients

    async def bootstrap(self) -> list[Step]:
        steps = [await self._products_table()]
        queue_arns: dict[str, str] = {}
        for queue, dlq in self.names.queues.items():
            dlq_step, dlq_arn = await self._queue(dlq, {"MessageRetentionPeriod": "1209600"})
            redrive = json.dumps(
                {
                    "deadLetterTargetArn": dlq_arn,
                    "maxReceiveCount": str(self.settings.sqs_max_receive_count),
                }
            )
            attributes = {
                "VisibilityTimeout": str(self.settings.sqs_visibility_timeout_seconds),
                "ReceiveMessageWaitTimeSeconds": "20",
                "RedrivePolicy": redrive,
            }
            queue_step, queue_arns[queue] = await self._queue(queue, attributes)
            steps += [dlq_step, queue_step]
        notifications_arn = queue_arns[self.names.notifications_queue]
        topic_arns = []
        for topic in self.names.topics:
            topic_step, topic_arn = await self._topic(topic)
            topic_arns.append(topic_arn)
            steps.append(topic_step)
            steps.append(await self._subscription(topic, topic_arn, notifications_arn))
        steps.append(await self._queue_policy(self.names.notifications_queue, topic_arns))
        steps.append(await self._ses_identity())
        steps += await self._ssm_parameters()
        return steps

    async def reset(self) -> list[Step]:
        """Development reset: drop the products table and empty every queue, then bootstrap."""
        dynamodb = await self.clients.client("dynamodb")
        steps: list[Step] = []
        try:
            await dynamodb.delete_table(TableName=self.names.products_table)
            await dynamodb.get_waiter("table_not_exists").wait(
                TableName=self.names.products_table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            steps.append(Step("dynamodb table", self.names.products_table, Action.DELETED))
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise
        sqs = await self.clients.client("sqs")
        for queue, dlq in self.names.queues.items():
            for name in (queue, dlq):
                try:
                    url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
                except ClientError:
                    continue
                await sqs.purge_queue(QueueUrl=url)
                steps.append(Step("sqs queue", name, Action.PURGED))
        return steps + await self.bootstrap()

    # --- DynamoDB -----------------------------------------------------------------------------

    async def _products_table(self) -> Step:
        client = await self.clients.client("dynamodb")
        name = self.names.products_table
        try:
            table = (await client.describe_table(TableName=name))["Table"]
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise
            await client.create_table(**products_table_definition(name))
            await client.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            return Step("dynamodb table", name, Action.CREATED)
        stream = table.get("StreamSpecification") or {}
        if stream.get("StreamEnabled") and stream.get("StreamViewType") == "NEW_AND_OLD_IMAGES":
            return Step("dynamodb table", name, Action.UNCHANGED)
        await client.update_table(
            TableName=name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        return Step("dynamodb table", name, Action.UPDATED)

    # --- SQS ----------------------------------------------------------------------------------

    async def _queue(self, name: str, attributes: dict[str, str]) -> tuple[Step, str]:
        client = await self.clients.client("sqs")
        try:
            url = (await client.get_queue_url(QueueName=name))["QueueUrl"]
        except ClientError as error:
            if _error_code(error) not in {
                "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist",
            }:
                raise
            url = (await client.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"]
            return Step("sqs queue", name, Action.CREATED), await self._queue_arn(url)
        current = (await client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))[
            "Attributes"
        ]
        changed = {
            key: value
            for key, value in attributes.items()
            if not _same_attribute(key, current.get(key), value)
        }
        if not changed:
            return Step("sqs queue", name, Action.UNCHANGED), current["QueueArn"]
        await client.set_queue_attributes(QueueUrl=url, Attributes=changed)
        return Step("sqs queue", name, Action.UPDATED), current["QueueArn"]

    async def _queue_arn(self, url: str) -> str:
        client = await self.clients.client("sqs")
        attributes = await client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"]

    async def _queue_policy(self, queue: str, topic_arns: list[str]) -> Step:
        """Allow the topics (and only them) to deliver to the queue, as real SNS requires."""
        client = await self.clients.client("sqs")
        url = (await client.get_queue_url(QueueName=queue))["QueueUrl"]
        arn = await self._queue_arn(url)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowPickupTopics",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sorted(topic_arns)}},
                }
            ],
        }
        current = await client.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
        existing = current.get("Attributes", {}).get("Policy")
        if existing and json.loads(existing) == policy:
            return Step("sqs queue policy", queue, Action.UNCHANGED)
        await client.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        return Step("sqs queue policy", queue, Action.UPDATED if existing else Action.CREATED)

    # --- SNS ----------------------------------------------------------------------------------

    async def _topic(self, name: str) -> tuple[Step, str]:
        client = await self.clients.client("sns")
        paginator = client.get_paginator("list_topics")
        async for page in paginator.paginate():
            for topic in page.get("Topics", []):
                if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                    return Step("sns topic", name, Action.UNCHANGED), topic["TopicArn"]
        arn = (await client.create_topic(Name=name))["TopicArn"]
        return Step("sns topic", name, Action.CREATED), arn

    async def _subscription(self, topic: str, topic_arn: str, queue_arn: str) -> Step:
        client = await self.clients.client("sns")
        label = f"{topic} -> {queue_arn.rsplit(':', 1)[-1]}"
        paginator = client.get_paginator("list_subscriptions_by_topic")
        async for page in paginator.paginate(TopicArn=topic_arn):
            for subscription in page.get("Subscriptions", []):
                if subscription["Protocol"] == "sqs" and subscription["Endpoint"] == queue_arn:
                    return Step("sns subscription", label, Action.UNCHANGED)
        # Raw delivery keeps the message attributes (event type, trace context) as SQS
        # attributes, so consumers read the same shape whether a message came via SNS or not.
        await client.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return Step("sns subscription", label, Action.CREATED)

    # --- SES ----------------------------------------------------------------------------------

    async def _ses_identity(self) -> Step:
        client = await self.clients.client("ses")
        sender = self.settings.ses_sender
        identities = await client.list_identities(IdentityType="EmailAddress")
        if sender in identities.get("Identities", []):
            return Step("ses identity", sender, Action.UNCHANGED)
        # On real AWS this sends a verification email; sending works once it is confirmed.
        await client.verify_email_identity(EmailAddress=sender)
        return Step("ses identity", sender, Action.CREATED)

    # --- SSM ----------------------------------------------------------------------------------

    async def _ssm_parameters(self) -> list[Step]:
        client = await self.clients.client("ssm")
        base = ssm_base_path(self.settings)
        steps = []
        for field in PUBLISHED_SETTINGS:
            name = base + field
            value = str(getattr(self.settings, field))
            try:
                current = (await client.get_parameter(Name=name))["Parameter"]["Value"]
            except ClientError as error:
                if _error_code(error) != "ParameterNotFound":
                    raise
                current = None
            if current == value:
                steps.append(Step("ssm parameter", name, Action.UNCHANGED))
                continue
            await client.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
            action = Action.CREATED if current is None else Action.UPDATED
            steps.append(Step("ssm parameter", name, action))
        return steps


def _same_attribute(key: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if key == "RedrivePolicy":
        ours, theirs = json.loads(wanted), json.loads(current)
        return ours["deadLetterTargetArn"] == theirs.get("deadLetterTargetArn") and str(
            ours["maxReceiveCount"]
        ) == str(theirs.get("maxReceiveCount"))
    return current == wanted


async def bootstrap(settings: Settings, *, reset: bool = False) -> list[Step]:
    async with AWSClients(settings) as clients:
        provisioner = Provisioner(settings, clients)
        return await (provisioner.reset() if reset else provisioner.bootstrap())


def run_bootstrap(settings: Settings, *, reset: bool = False) -> list[Step]:
    return asyncio.run(bootstrap(settings, reset=reset))


def summary(steps: list[Step]) -> str:
    if all(step.action is Action.UNCHANGED for step in steps):
        return f"Nothing to do: all {len(steps)} resources already exist as configured."
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.action.value] = counts.get(step.action.value, 0) + 1
    return ", ".join(f"{count} {action}" for action, count in counts.items()) + "."
