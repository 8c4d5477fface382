"""The development outbox: every email and text message the notifier sent, at ``/dev/outbox``.

Only in development (``PICKUP_ENV=development``): the notifier keeps a copy of each message it
sent (after the provider accepted it) in a capped Redis list, and this router shows them,
newest first, rendered: the HTML email in a sandboxed frame, its text version and each text
message. ``/dev/outbox.json`` gives the same as JSON. In any other environment the routes are
404 and nothing is recorded.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from redis.exceptions import RedisError

from pickup.settings import Environment

if TYPE_CHECKING:
    from pickup.notifier.channels import Notification

logger = logging.getLogger("pickup.notifier.dev_outbox")

OUTBOX_KEY = "dev:outbox"
KEEP = 200

router = APIRouter(include_in_schema=False)


async def record(redis: Any, notification: Notification, message_id: str) -> None:
    entry = {
        "id": message_id,
        "channel": notification.channel,
        "to": notification.recipient,
        "template": notification.template,
        "dedupe_key": notification.dedupe_key,
        "sent_at": datetime.now(UTC).isoformat(),
        "subject": notification.email.subject if notification.email else None,
        "text": notification.email.text if notification.email else notification.sms,
        "html": notification.email.html if notification.email else None,
    }
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.lpush(OUTBOX_KEY, json.dumps(entry))
            pipe.ltrim(OUTBOX_KEY, 0, KEEP - 1)
            await pipe.execute()
    except (RedisError, OSError) as error:
        logger.warning("dev_outbox.record_failed error=%s", error)


async def entries(redis: Any) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in await redis.lrange(OUTBOX_KEY, 0, KEEP - 1)]


def _resources(request: Request) -> Any:
    resources = request.app.state.resources
    if resources.settings.env is not Environment.DEVELOPMENT:
        raise HTTPException(status_code=404)
    return resources


@router.get("/dev/outbox.json")
async def outbox_json(request: Request) -> JSONResponse:
    resources = _resources(request)
    return JSONResponse({"messages": await entries(resources.redis)})


@router.get("/dev/outbox", response_class=HTMLResponse)
async def outbox_page(request: Request) -> HTMLResponse:
    from pickup.notifier.templates import environment

    resources = _resources(request)
    messages = await entries(resources.redis)
    page = environment().get_template("dev_outbox.html")
    return HTMLResponse(
        page.render(messages=messages, shop_name=resources.settings.shop_name),
        headers={"Cache-Control": "no-store"},
    )
