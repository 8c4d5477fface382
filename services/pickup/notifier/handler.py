"""The notifications queue's handler: order events tell the customer, stock alerts the staff.

Customers: an email for ``confirmed``, ``cancelled`` and ``expired``; customers who opted in to
text messages (and gave a phone number) also get an SMS. ``ready`` is the time-critical one: a
text message for those who opted in, otherwise an email. If a text message fails, an email
takes its place (and the text is not tried again). Staff: an email to every
``PICKUP_STAFF_ALERT_EMAILS`` address for each alert, and for critical and out-of-stock alerts
a text to every ``PICKUP_STAFF_ALERT_PHONES`` number.

Each (event, channel, recipient) has a dedupe key, so a message delivered twice sends once
(pickup.notifier.channels: a send is claimed before it is made and its outcome recorded after).
An email that fails is retried (the message comes back with a backoff) and, after the queue's
receive count, goes to the DLQ; every attempt is in the notification log. A notification
another delivery is still sending brings the message back once that claim's lease has run out.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from pickup.adapters.orm import Order
from pickup.messaging.consumer import Handler, Message, Poison, Retry
from pickup.notifier import repository
from pickup.notifier.channels import Channels, Delivery, Notification, SendFailed, deliver
from pickup.notifier.templates import local_time, money, render_email, render_sms
from pickup.runtime import Resources

logger = logging.getLogger("pickup.notifier")

SUPPORTED_VERSION = 1
CUSTOMER_TEMPLATES = {
    "order.confirmed": "order_confirmed",
    "order.ready": "order_ready",
    "order.cancelled": "order_cancelled",
    "order.expired": "order_expired",
}
# Events on the same topics that nobody is told about.
QUIET_EVENTS = {"order.placed", "order.pending", "order.preparing", "order.picked_up"}
STOCK_ALERTS = {
    "inventory.low_stock": "Low stock",
    "inventory.critical_stock": "Critical stock",
    "inventory.out_of_stock": "Out of stock",
}
CRITICAL_ALERTS = {"inventory.critical_stock", "inventory.out_of_stock"}
# The inventory operator's alerts (InventoryThreshold resources) name the level they reached.
OPERATOR_ALERT = "inventory.threshold_crossed"
OPERATOR_LEVELS = {
    "Low": "inventory.low_stock",
    "Critical": "inventory.critical_stock",
    "OutOfStock": "inventory.out_of_stock",
}
EMAIL_ALWAYS = {"order.confirmed", "order.cancelled", "order.expired"}


def notification_handler(resources: Resources) -> Handler:
    channels = Channels(resources)

    async def handle(message: Message) -> None:
        payload = message.json()
        event_type = str(payload.get("type") or message.attributes.get("event_type"))
        if not _supported_version(event_type, payload.get("version")):
            raise Poison(f"unsupported version {payload.get('version')!r} of {event_type!r}")
        if event_type in CUSTOMER_TEMPLATES:
            await notify_customer(resources, channels, str(event_type), payload)
        elif event_type in STOCK_ALERTS:
            await notify_staff(resources, channels, str(event_type), payload)
        elif event_type == OPERATOR_ALERT:
            level = OPERATOR_LEVELS.get(str(payload.get("level")))
            if level is None:
                return  # back to Ok: nobody needs waking for that
            notify = payload.get("notify") if isinstance(payload.get("notify"), dict) else {}
            await notify_staff(
                resources,
                channels,
                level,
                payload,
                emails=[str(address) for address in notify.get("emails") or []],
                phones=[str(phone) for phone in notify.get("phones") or []],
            )
        elif event_type in QUIET_EVENTS:
            return
        else:
            raise Poison(f"unknown event type {event_type!r}")

    return handle


def _supported_version(event_type: str, version: object) -> bool:
    if isinstance(version, bool) or not isinstance(version, int):
        return False
    return version == SUPPORTED_VERSION


def _order_context(resources: Resources, order: Order, payload: dict[str, Any]) -> dict[str, Any]:
    settings = resources.settings
    zone = ZoneInfo(settings.timezone)
    base = str(settings.public_url).rstrip("/")
    ready_at = order.estimated_ready_at or order.pickup_at
    return {
        "shop_name": settings.shop_name,
        "shop_url": base + "/",
        "customer_name": order.customer_name.split()[0] if order.customer_name else "there",
        "code": order.code,
        "pickup_at": local_time(order.pickup_at, zone),
        "estimated_ready_at": local_time(ready_at, zone),
        "estimated_ready_time": local_time(ready_at, zone, with_day=False),
        "items": [
            {
                "name": item.product_name,
                "quantity": item.quantity,
                "line_total": money(item.line_total_cents, order.currency),
            }
            for item in order.items
        ],
        "total": money(order.total_cents, order.currency),
        "special_instructions": order.special_instructions,
        "note": payload.get("note"),
        "status_url": f"{base}/orders/{order.id}/status",
    }


async def notify_customer(
    resources: Resources, channels: Channels, event_type: str, payload: dict[str, Any]
) -> None:
    try:
        order_id = uuid.UUID(str(payload["order_id"]))
    except (KeyError, ValueError):
        raise Poison("order_id is missing or not a UUID") from None
    async with resources.sessions() as session:
        order = await repository.get_order(session, order_id)
    if order is None:
        raise Poison(f"there is no order {order_id}")  # events are sent after the commit
    template = CUSTOMER_TEMPLATES[event_type]
    context = _order_context(resources, order, payload)
    key = f"{event_type}:{order_id}"

    text_failed = False
    if order.sms_opt_in and order.customer_phone:
        sms = Notification(
            channel="sms",
            recipient=order.customer_phone,
            template=template,
            dedupe_key=f"{key}:sms",
            order_id=order_id,
            sms=render_sms(template, context),
        )
        try:
            outcome = await deliver(resources, channels, sms, retry_after_failure=False)
        except SendFailed:
            outcome = Delivery.GAVE_UP
        text_failed = outcome is Delivery.GAVE_UP
    texted = order.sms_opt_in and order.customer_phone and not text_failed
    if event_type in EMAIL_ALWAYS or not texted:
        email = Notification(
            channel="email",
            recipient=order.customer_email,
            template=template,
            dedupe_key=f"{key}:email",
            order_id=order_id,
            email=render_email(template, context),
        )
        try:
            await deliver(resources, channels, email)
        except SendFailed as failure:
            raise Retry(failure.error) from None


async def notify_staff(
    resources: Resources,
    channels: Channels,
    event_type: str,
    payload: dict[str, Any],
    *,
    emails: list[str] | None = None,
    phones: list[str] | None = None,
) -> None:
    """Tell staff about a stock alert: the configured recipients plus any the alert names."""
    settings = resources.settings
    alert_emails = list(dict.fromkeys([*settings.staff_alert_emails, *(emails or [])]))
    alert_phones = list(dict.fromkeys([*settings.staff_alert_phones, *(phones or [])]))
    alert_id = payload.get("alert_id")
    if not alert_id or not payload.get("product_id"):
        raise Poison("a stock alert needs alert_id and product_id")
    base = str(settings.public_url).rstrip("/")
    context = {
        "shop_name": settings.shop_name,
        "headline": STOCK_ALERTS[event_type],
        "product_id": payload["product_id"],
        "product_name": payload.get("product_name") or payload["product_id"],
        "available": payload.get("available", 0),
        "on_hand": payload.get("on_hand", 0),
        "reserved": payload.get("reserved", 0),
        "low_stock_threshold": payload.get("low_stock_threshold"),
        "critical_threshold": payload.get("critical_threshold"),
        "reorder_quantity": payload.get("reorder_quantity"),
        "inventory_url": f"{base}/admin/inventory",
    }
    if not alert_emails and not alert_phones:
        logger.info("stock.alert_unsent alert_id=%s (no staff recipients configured)", alert_id)
        return
    failures: list[str] = []
    later: list[Retry] = []  # claimed by another delivery, or not yet recorded
    if event_type in CRITICAL_ALERTS:
        text = render_sms("stock_alert", context)
        for phone in alert_phones:
            sms = Notification(
                channel="sms",
                recipient=phone,
                template="stock_alert",
                dedupe_key=f"inventory.alert:{alert_id}:sms:{phone}",
                sms=text,
            )
            try:
                await deliver(resources, channels, sms, retry_after_failure=False)
            except SendFailed:
                pass  # every alert is also emailed, below
            except Retry as retry:
                later.append(retry)
    rendered = render_email("stock_alert", context)
    for address in alert_emails:
        email = Notification(
            channel="email",
            recipient=address,
            template="stock_alert",
            dedupe_key=f"inventory.alert:{alert_id}:email:{address}",
            email=rendered,
        )
        try:
            await deliver(resources, channels, email)
        except SendFailed as failure:
            failures.append(failure.error)
        except Retry as retry:
            later.append(retry)
    if failures:
        raise Retry("; ".join(failures))
    if later:  # the rest went out: come back once the longest claim has lapsed
        delays = [retry.delay for retry in later if retry.delay is not None]
        raise Retry("; ".join(retry.reason for retry in later), delay=max(delays, default=None))
