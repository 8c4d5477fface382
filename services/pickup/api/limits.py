"""Request body guards, as pure ASGI middleware so nothing is buffered before the check.

- Any request whose ``Content-Length`` exceeds the limit is answered 413 before its body is
  read; one within it goes through untouched, since the server delivers exactly the declared
  length. A body without a length (chunked) is counted as it streams in; the moment it passes
  the limit the app's read fails and whatever the app would have answered is replaced by the
  413, so at most ``max_bytes`` plus one chunk is ever held.
- A write (POST, PUT, PATCH, DELETE) with a body under ``/api/`` must be JSON
  (``application/json`` or a ``+json`` type); anything else is answered 415.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pickup.api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Reads pass straight through unless they announce a body (a length or chunked encoding).
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_PREFIX = "/api/"


class _BodyTooLarge(HTTPException):
    # An HTTPException so that FastAPI passes it on instead of calling it a malformed body.
    def __init__(self) -> None:
        super().__init__(413)


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked, content_type = _body_headers(scope["headers"])
        if length is None and not chunked and scope["method"] in BODILESS_METHODS:
            await self.app(scope, receive, send)
            return
        declared = int(length) if length is not None and length.strip().isdigit() else None
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, send)
            return
        if _needs_json(scope, declared, chunked) and not _is_json(content_type):
            await _send_problem(
                send,
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the request body as application/json "
                f"(got {content_type or 'no content type'}).",
                scope["path"],
                {"supported_media_types": ["application/json"]},
            )
            return
        if declared is not None and not chunked:
            # The server hands the app exactly the declared length (HTTP/1.1 framing), which
            # is within the limit: nothing to count (the hot paths all declare theirs).
            await self.app(scope, receive, send)
            return

        received = 0
        overflowed = started = replaced = False

        async def counting_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    overflowed = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the rest of the answer the app made after the overflow
            if overflowed and not started:
                replaced = True
                await self._too_large(scope, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if started and not replaced:
                raise  # an answer is already under way: the server drops the connection
            if not replaced:
                await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await _send_problem(
            send,
            413,
            "payload-too-large",
            "The request body is too large",
            f"Request bodies are limited to {self.max_bytes} bytes.",
            scope["path"],
            {"max_bytes": self.max_bytes},
        )


def _body_headers(raw: list[tuple[bytes, bytes]]) -> tuple[bytes | None, bool, str | None]:
    """The ``Content-Length`` as sent, whether the body is sent chunked, and the content type,
    in one pass over the request's headers (lower-case names, as ASGI servers give them; the
    first of a repeated header counts)."""
    length: bytes | None = None
    content_type: bytes | None = None
    chunked = False
    for name, value in raw:
        if name == b"content-length":
            if length is None:
                length = value
        elif name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked, None if content_type is None else content_type.decode("latin-1")


def _needs_json(scope: Scope, declared: int | None, chunked: bool) -> bool:
    if scope["method"] not in WRITE_METHODS or not scope["path"].startswith(JSON_PREFIX):
        return False
    return (declared or 0) > 0 or chunked


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def _send_problem(
    send: Send,
    status: int,
    type_: str,
    title: str,
    detail: str,
    instance: str,
    extensions: dict[str, Any],
) -> None:
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_BASE + type_,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": instance,
            **extensions,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
