"""Publishing stock alerts to the inventory-alerts SNS topic.

The operator has no database, so there is no outbox: an alert is published directly, and the
handler records it in the resource's status only after SNS accepted it (a failed publish is
retried with the level change, never recorded as sent).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pickup.adapters.aws import AWSClients


class AlertUnsent(Exception):
    """SNS refused or could not be reached; ``missing_topic`` when the topic does not exist."""

    def __init__(self, message: str, *, missing_topic: bool = False) -> None:
        super().__init__(message)
        self.missing_topic = missing_topic


class AlertPublisher:
    def __init__(self, clients: AWSClients, topic_name: str) -> None:
        self._clients = clients
        self.topic_name = topic_name
        self._topic_arn: str | None = None

    async def _arn(self, sns: Any) -> str:
        if self._topic_arn is None:
            async for page in sns.get_paginator("list_topics").paginate():
                for topic in page.get("Topics", []):
                    if topic["TopicArn"].rsplit(":", 1)[-1] == self.topic_name:
                        self._topic_arn = topic["TopicArn"]
            if self._topic_arn is None:
                raise AlertUnsent(
                    f"no SNS topic named {self.topic_name}: run `pickup bootstrap`",
                    missing_topic=True,
                )
        return self._topic_arn

    async def publish(self, message: dict[str, Any], attributes: dict[str, Any]) -> str:
        """Publish one alert; returns SNS's message id or raises :class:`AlertUnsent`."""
        try:
            sns = await self._clients.client("sns")
            response = await sns.publish(
                TopicArn=await self._arn(sns),
                Message=json.dumps(message, separators=(",", ":"), default=str),
                MessageAttributes=attributes,
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "NotFound":
                self._topic_arn = None  # deleted and recreated: look it up again
            raise AlertUnsent(f"SNS refused the alert ({code}): {error}") from error
        except (BotoCoreError, OSError) as error:
            raise AlertUnsent(f"SNS is unreachable: {error}") from error
        return str(response.get("MessageId", ""))
