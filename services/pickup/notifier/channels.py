"""Sending: email through SES (v2) and text messages through SNS, and the notification log.

:func:`deliver` sends one notification at most once: under a lock on its dedupe key it looks
for an earlier successful send, sends, and records the attempt (sent or failed, with the
provider's error) in ``notification_log`` in the same transaction. A message delivered twice
therefore sends once, and every attempt leaves a row.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pickup.notifier import dev_outbox, repository
from pickup.notifier.templates import RenderedEmail
from pickup.observability import tracing
from pickup.observability.logs import redact
from pickup.observability.metrics import NOTIFICATIONS
from pickup.runtime import Resources
from pickup.settings import Environment

logger = logging.getLogger("pickup.notifier")

SEND_ERRORS = (BotoCoreError, ClientError, OSError)
DEDUPE_KEY_MAX = 200  # notification_log.dedupe_key


def dedupe_key(key: str) -> str:
    """``key`` as stored: a long one (a long email address in it) keeps a prefix and a digest."""
    if len(key) <= DEDUPE_KEY_MAX:
        return key
    return key[:120] + "#" + hashlib.sha256(key.encode()).hexdigest()


class SendFailed(Exception):
    def __init__(self, channel: str, recipient: str, error: str) -> None:
        # The message ends up in logs and traces: the recipient is masked there.
        super().__init__(f"{channel} to {redact(recipient)} failed: {redact(error)}")
        self.channel = channel
        self.error = error


class Delivery(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    GAVE_UP = "gave_up"  # failed before and not to be tried again (an SMS with a fallback)


@dataclass(frozen=True)
class Notification:
    channel: str  # "email" or "sms"
    recipient: str
    template: str
    dedupe_key: str
    order_id: uuid.UUID | None = None
    email: RenderedEmail | None = None
    sms: str | None = None


class Channels:
    """The providers. In development every message sent is also kept for ``/dev/outbox``."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings

    async def send(self, notification: Notification) -> str:
        """Send; the provider's message id, or :class:`SendFailed`.

        With tracing on, a ``notification.send`` span holds the provider's call (SES or SNS).
        """
        attributes: dict[str, str] = {
            "notification.channel": notification.channel,
            "notification.template": notification.template,
        }
        if notification.order_id is not None:
            attributes["pickup.order_id"] = str(notification.order_id)
        try:
            with tracing.span("notification.send", attributes):
                if notification.channel == "email":
                    assert notification.email is not None
                    message_id = await self._email(notification.recipient, notification.email)
                else:
                    assert notification.sms is not None
                    message_id = await self._sms(notification.recipient, notification.sms)
        except SEND_ERRORS as error:
            raise SendFailed(
                notification.channel, notification.recipient, f"{type(error).__name__}: {error}"
            ) from error
        if self.settings.env is Environment.DEVELOPMENT:
            await dev_outbox.record(self.resources.redis, notification, message_id)
        return message_id

    async def _email(self, to: str, email: RenderedEmail) -> str:
        ses = await self.resources.aws.client("sesv2")
        response = await ses.send_email(
            FromEmailAddress=self.settings.ses_sender,
            Destination={"ToAddresses": [to]},
            Content={
                "Simple": {
                    "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": email.text, "Charset": "UTF-8"},
                        "Html": {"Data": email.html, "Charset": "UTF-8"},
                    },
                }
            },
        )
        return str(response["MessageId"])

    async def _sms(self, phone: str, text: str) -> str:
        sns = await self.resources.aws.client("sns")
        response = await sns.publish(
            PhoneNumber=phone,
            Message=text,
            MessageAttributes={
                "AWS.SNS.SMS.SenderID": {
                    "DataType": "String",
                    "StringValue": self.settings.sms_sender_id,
                },
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
            },
        )
        return str(response["MessageId"])


async def deliver(
    resources: Resources,
    channels: Channels,
    notification: Notification,
    *,
    retry_after_failure: bool = True,
) -> Delivery:
    """Send ``notification`` unless it was sent already; :class:`SendFailed` if sending fails.

    With ``retry_after_failure=False`` a notification that failed before is not tried again
    (:attr:`Delivery.GAVE_UP`): a text message whose email fallback took over.
    """
    key = dedupe_key(notification.dedupe_key)
    async with resources.sessions.begin() as session:
        await repository.lock_dedupe_key(session, key)
        sent, attempts = await repository.attempts(session, key)
        if sent:
            logger.info(
                "notification.duplicate order_id=%s key=%s", notification.order_id, redact(key)
            )
            NOTIFICATIONS.labels(notification.channel, "duplicate").inc()
            return Delivery.ALREADY_SENT
        if attempts and not retry_after_failure:
            NOTIFICATIONS.labels(notification.channel, "skipped").inc()
            return Delivery.GAVE_UP
        row: dict[str, Any] = {
            "order_id": notification.order_id,
            "channel": notification.channel,
            "template": notification.template,
            "recipient": notification.recipient[:254],
            "attempt": attempts + 1,
            "dedupe_key": key,
            "created_at": datetime.now(UTC),
        }
        try:
            message_id = await channels.send(notification)
        except SendFailed as failure:
            repository.record(session, status="failed", error=failure.error, **row)
            failed = failure
        else:
            repository.record(session, status="sent", provider_message_id=message_id, **row)
            failed = None
    NOTIFICATIONS.labels(notification.channel, "sent" if failed is None else "failed").inc()
    if failed is not None:
        logger.warning(
            "notification.failed order_id=%s key=%s attempt=%s error=%s",
            notification.order_id,
            redact(key),
            attempts + 1,
            redact(failed.error),
        )
        raise failed
    logger.info(
        "notification.sent order_id=%s channel=%s template=%s key=%s",
        notification.order_id,
        notification.channel,
        notification.template,
        redact(key),
    )
    return Delivery.SENT
