"""Sending: email through SES (v2) and text messages through SNS, and the notification log.

Neither SES nor SNS takes an idempotency key, so "sent exactly once" rests on the log.
:func:`deliver` sends one notification in three steps, each a short transaction of its own:

1. **claim**: under an advisory lock on the dedupe key, check that nothing was sent and no
   send is in progress, and commit a ``sending`` row (attempt n);
2. **send**, with no database transaction open, one HTTP request (the sending clients do not
   retry, pickup.adapters.aws) bounded by ``SEND_TIMEOUT_SECONDS``;
3. **record** the outcome on that row: ``sent`` with the provider's message id, ``failed``
   (the provider was never reached, or refused: safe to try again) or ``ambiguous`` (the
   request was written and its answer lost: it may have been sent). If PostgreSQL is away the
   outcome is kept and the write retried with backoff for most of the send lease, so a send
   made during a database outage is recorded once the database is back, not made again.

A second delivery that finds a ``sending`` row younger than the lease
(``PICKUP_NOTIFICATION_SEND_LEASE_SECONDS``) sends nothing and asks for the message again
once the lease has run out (:class:`SendInProgress`). A ``sending`` row older than that was
left by a sender that died between its claim and its record: the row becomes ``ambiguous``
and the notification is sent again. Unknown outcomes are resolved towards at-least-once (a
customer is never left without a confirmation), and each is counted
(``pickup_notifications_total{result="ambiguous"}``) and logged (``notification.ambiguous``):
a duplicate can only come from that window. docs/reliability.md explains the choice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from pickup.adapters.aws import SEND_TIMEOUT_SECONDS
from pickup.core.errors import ServiceUnavailable
from pickup.messaging.consumer import Retry
from pickup.notifier import dev_outbox, repository
from pickup.notifier.templates import RenderedEmail
from pickup.observability import tracing
from pickup.observability.logs import redact
from pickup.observability.metrics import NOTIFICATIONS
from pickup.orders.repository import database_errors
from pickup.runtime import Resources
from pickup.settings import Environment

logger = logging.getLogger("pickup.notifier")

SEND_ERRORS = (BotoCoreError, ClientError, OSError)  # OSError includes TimeoutError
DEDUPE_KEY_MAX = 200  # notification_log.dedupe_key
# The outcome of a send is written within this share of the lease after the claim (then the
# claim is left to lapse), so a live claim is never judged dead while its sender still works.
RECORD_SHARE_OF_LEASE = 0.75
RECORD_BACKOFF_SECONDS = (0.2, 5.0)  # first and longest pause between attempts to record


def dedupe_key(key: str) -> str:
    """``key`` as stored: a long one (a long email address in it) keeps a prefix and a digest."""
    if len(key) <= DEDUPE_KEY_MAX:
        return key
    return key[:120] + "#" + hashlib.sha256(key.encode()).hexdigest()


def maybe_delivered(error: BaseException) -> bool:
    """Whether the provider may have accepted a request that ended in ``error``.

    Not sent: the connection was never made (refused, unreachable, DNS, connect timeout, TLS
    handshake), the request was invalid before it left (botocore's own checks), or the
    provider answered with a 4xx refusal. Perhaps sent: the request was written and the
    answer never came (read timeout, connection closed or reset, our overall timeout), or the
    provider answered 5xx. aiobotocore reports *every* aiohttp connection error as
    ``EndpointConnectionError``, a reset after the request was written included; only a
    ``ClientConnectorError`` under it means connect() itself failed.
    """
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return int(status) >= 500
    if isinstance(error, EndpointConnectionError):
        cause = error.kwargs.get("error")
        return not isinstance(cause, aiohttp.ClientConnectorError | socket.gaierror)
    if isinstance(error, BotoConnectionError):  # connect timeout, proxy, TLS handshake
        return False
    if isinstance(error, HTTPClientError):  # read timeout, connection closed or reset
        return True
    if isinstance(error, BotoCoreError):  # raised before any request: credentials, parameters
        return False
    return not isinstance(error, ConnectionRefusedError)


class SendFailed(Exception):
    """A send that did not (knowingly) succeed; ``ambiguous``: it may have been sent."""

    def __init__(
        self, channel: str, recipient: str, error: str, *, ambiguous: bool = False
    ) -> None:
        # The message ends up in logs and traces: the recipient is masked there.
        super().__init__(f"{channel} to {redact(recipient)} failed: {redact(error)}")
        self.channel = channel
        self.error = error
        self.ambiguous = ambiguous


class SendInProgress(Retry):
    """Another delivery of this notification claimed it and has not recorded an outcome yet:
    send nothing, and see the message again once the claim's lease has run out."""


class OutcomeUnrecorded(Retry):
    """The send's outcome could not be written before the claim's lease ran short
    (PostgreSQL away too long). This process remembers it and writes it when the message
    comes back; another process would find the claim lapsed and count the send ambiguous."""


@dataclass(frozen=True)
class Outcome:
    row_id: int
    status: str  # sent, failed or ambiguous
    provider_message_id: str | None = None
    error: str | None = None


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
        # Outcomes known here but not yet written to the log (dedupe key -> outcome).
        self.unrecorded: dict[str, Outcome] = {}

    async def send(self, notification: Notification) -> str:
        """Send; the provider's message id, or :class:`SendFailed` (``ambiguous`` when the
        request may have been accepted, :func:`maybe_delivered`).

        One request, without retries, within ``SEND_TIMEOUT_SECONDS``. With tracing on, a
        ``notification.send`` span holds the provider's call (SES or SNS).
        """
        attributes: dict[str, str] = {
            "notification.channel": notification.channel,
            "notification.template": notification.template,
        }
        if notification.order_id is not None:
            attributes["pickup.order_id"] = str(notification.order_id)
        try:
            with tracing.span("notification.send", attributes):
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                    if notification.channel == "email":
                        assert notification.email is not None
                        message_id = await self._email(notification.recipient, notification.email)
                    else:
                        assert notification.sms is not None
                        message_id = await self._sms(notification.recipient, notification.sms)
        except SEND_ERRORS as error:
            raise SendFailed(
                notification.channel,
                notification.recipient,
                f"{type(error).__name__}: {error}",
                ambiguous=maybe_delivered(error),
            ) from error
        if self.settings.env is Environment.DEVELOPMENT:
            try:
                await dev_outbox.record(self.resources.redis, notification, message_id)
            except Exception:  # sent is sent: the development outbox is only a view
                logger.exception("dev_outbox.record_failed")
        return message_id

    async def _email(self, to: str, email: RenderedEmail) -> str:
        ses = await self.resources.aws.sending_client("sesv2")
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
        sns = await self.resources.aws.sending_client("sns")
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
    """Send ``notification`` unless it was sent already (the module's three steps).

    Raises :class:`SendFailed` if the send failed or its outcome is unknown (it is tried again
    when the message comes back), :class:`SendInProgress` if another delivery holds a live
    claim on it, :class:`OutcomeUnrecorded` if the outcome could not be written in time. With
    ``retry_after_failure=False`` a notification tried before is not tried again
    (:attr:`Delivery.GAVE_UP`): a text message whose email fallback takes over.
    """
    key = dedupe_key(notification.dedupe_key)
    lease = timedelta(seconds=resources.settings.notification_send_lease_seconds)
    if key in channels.unrecorded:
        await _record_remembered(resources, channels, key)

    # 1. Claim.
    lapsed: repository.Claim | None = None
    async with resources.sessions.begin() as session:
        await repository.lock_dedupe_key(session, key)
        # The claim's time, taken once the lock is held; its lease runs from here.
        now, started = datetime.now(UTC), time.monotonic()
        seen = await repository.history(session, key)
        if seen.sent:
            logger.info(
                "notification.duplicate order_id=%s key=%s", notification.order_id, redact(key)
            )
            NOTIFICATIONS.labels(notification.channel, "duplicate").inc()
            return Delivery.ALREADY_SENT
        if seen.claim is not None:
            age = now - seen.claim.updated_at
            if age < lease:
                NOTIFICATIONS.labels(notification.channel, "in_progress").inc()
                raise SendInProgress(
                    f"{notification.channel} {redact(key)} is being sent (attempt "
                    f"{seen.claim.attempt}, claimed {age.total_seconds():.0f}s ago)",
                    delay=(lease - age).total_seconds() + 1,
                )
            # Its sender died between claiming and recording: whether it sent is unknown.
            lapsed = seen.claim
            await repository.settle(
                session,
                lapsed.id,
                status="ambiguous",
                now=now,
                error=f"the sender stopped before recording an outcome (claim older than "
                f"{lease.total_seconds():.0f}s)",
            )
        if seen.attempts and not retry_after_failure:
            skipped = True
        else:
            skipped = False
            attempt = seen.attempts + 1
            row_id = await repository.claim(
                session,
                order_id=notification.order_id,
                channel=notification.channel,
                template=notification.template,
                recipient=notification.recipient[:254],
                attempt=attempt,
                dedupe_key=key,
                created_at=now,
                updated_at=now,
            )
    if lapsed is not None:
        _ambiguous(notification, key, lapsed.attempt, "the sender stopped mid-send")
    if skipped:
        NOTIFICATIONS.labels(notification.channel, "skipped").inc()
        return Delivery.GAVE_UP

    # 2. Send, with no transaction open.
    try:
        message_id = await channels.send(notification)
    except SendFailed as failure:
        status = "ambiguous" if failure.ambiguous else "failed"
        outcome = Outcome(row_id, status, error=failure.error)
        failed: SendFailed | None = failure
    except Exception as error:  # a bug: whether it sent is unknown
        outcome = Outcome(row_id, "ambiguous", error=f"{type(error).__name__}: {error}")
        await _record(resources, outcome, deadline=time.monotonic())
        _ambiguous(notification, key, attempt, outcome.error or "")
        raise
    else:
        outcome = Outcome(row_id, "sent", provider_message_id=message_id)
        failed = None

    # 3. Record the outcome, riding out a PostgreSQL outage for most of the lease.
    deadline = started + lease.total_seconds() * RECORD_SHARE_OF_LEASE
    if await _record(resources, outcome, deadline=deadline) is None:
        channels.unrecorded[key] = outcome
        raise OutcomeUnrecorded(
            f"{notification.channel} {redact(key)} attempt {attempt}: {outcome.status}, "
            "not recorded (the database is unavailable)",
            delay=max(started + lease.total_seconds() - time.monotonic(), 0) + 1,
        )

    if failed is not None:
        if failed.ambiguous:
            _ambiguous(notification, key, attempt, failed.error)
        else:
            NOTIFICATIONS.labels(notification.channel, "failed").inc()
            logger.warning(
                "notification.failed order_id=%s key=%s attempt=%s error=%s",
                notification.order_id,
                redact(key),
                attempt,
                redact(failed.error),
            )
        raise failed
    NOTIFICATIONS.labels(notification.channel, "sent").inc()
    logger.info(
        "notification.sent order_id=%s channel=%s template=%s key=%s attempt=%s",
        notification.order_id,
        notification.channel,
        notification.template,
        redact(key),
        attempt,
    )
    return Delivery.SENT


def _ambiguous(notification: Notification, key: str, attempt: int, reason: str) -> None:
    NOTIFICATIONS.labels(notification.channel, "ambiguous").inc()
    logger.warning(
        "notification.ambiguous order_id=%s channel=%s key=%s attempt=%s reason=%s "
        "(it may have been sent; it is sent again)",
        notification.order_id,
        notification.channel,
        redact(key),
        attempt,
        redact(reason),
    )


async def _record(resources: Resources, outcome: Outcome, *, deadline: float) -> bool | None:
    """Write ``outcome`` onto its ``sending`` row, retrying while the database is unavailable
    until ``deadline`` (monotonic); whether the row was still ``sending``, or None if the
    database stayed away."""
    pause, longest = RECORD_BACKOFF_SECONDS
    tries = 0
    while True:
        tries += 1
        try:
            async with database_errors("the notification log is unavailable"):
                async with resources.sessions.begin() as session:
                    settled = await repository.settle(
                        session,
                        outcome.row_id,
                        status=outcome.status,
                        now=datetime.now(UTC),
                        provider_message_id=outcome.provider_message_id,
                        error=outcome.error,
                    )
        except ServiceUnavailable as error:
            if time.monotonic() + pause > deadline:
                logger.error(
                    "notification.unrecorded row=%s status=%s tries=%s error=%s",
                    outcome.row_id,
                    outcome.status,
                    tries,
                    error.__cause__ or error,
                )
                return None
            if tries == 1:
                logger.warning(
                    "notification.record_retrying row=%s status=%s error=%s",
                    outcome.row_id,
                    outcome.status,
                    error.__cause__ or error,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, longest)
            continue
        if not settled:
            # Only if the database was away longer than the lease: another delivery already
            # took the claim as lapsed and counted this send as ambiguous.
            logger.warning(
                "notification.record_late row=%s status=%s (its claim had lapsed)",
                outcome.row_id,
                outcome.status,
            )
        if tries > 1:
            logger.info(
                "notification.recorded row=%s status=%s tries=%s",
                outcome.row_id,
                outcome.status,
                tries,
            )
        return settled


async def _record_remembered(resources: Resources, channels: Channels, key: str) -> None:
    """Write an outcome this process could not record before (:class:`OutcomeUnrecorded` if
    the database is still away: the message comes back later)."""
    outcome = channels.unrecorded[key]
    if await _record(resources, outcome, deadline=time.monotonic()) is None:
        raise OutcomeUnrecorded(f"row {outcome.row_id}: the database is still unavailable")
    channels.unrecorded.pop(key, None)
