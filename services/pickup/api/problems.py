"""RFC 9457 problem responses: the one place errors become HTTP answers.

Every error the API returns is ``application/problem+json`` with a stable ``type`` URI, a
``title`` shared by all problems of that type, a ``detail`` about this occurrence and, for
validation, ``errors`` with one entry per field. Unexpected exceptions are logged with their
traceback and answered with a generic 500 that reveals nothing of the internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from pickup.core.errors import PickupError, ServiceUnavailable

logger = logging.getLogger("pickup.api")

PROBLEM_TYPE_BASE = "https://pickup.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the offending field, e.g. body.quantity")
    message: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = Field(description="a URI identifying the kind of problem")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None

    model_config = {"extra": "allow"}


def problem_response(
    status: int,
    type_: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({key: value for key, value in extensions.items() if value is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


async def _pickup_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PickupError)
    headers = None
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:  # 503s, 429s, and 409s that resolve by themselves
        headers = {"Retry-After": str(retry_after)}
    if error.status >= 500 and not isinstance(error, ServiceUnavailable):
        logger.error("request.failed", exc_info=error)
    return problem_response(
        error.status,
        error.type,
        error.title,
        error.detail,
        instance=request.url.path,
        headers=headers,
        **error.extensions(),
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"field": _field_path(item.get("loc", ())), "message": item.get("msg", "invalid")}
        for item in error.errors()
    ]
    fields = ", ".join(entry["field"] for entry in errors[:5])
    return problem_response(
        422,
        "validation-error",
        "The request is not valid",
        f"Check these fields: {fields}." if fields else "The request body is not valid.",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
        # FastAPI answers a body that is not UTF-8 with a bare 400; JSON it cannot parse is
        # already a 422 validation problem, and so is this.
        return problem_response(
            422,
            "validation-error",
            "The request is not valid",
            "The request body is not valid JSON (it must be UTF-8).",
            instance=request.url.path,
            errors=[{"field": "body", "message": "not UTF-8 text"}],
        )
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) else phrase
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    return problem_response(
        error.status_code,
        slug,
        phrase,
        detail,
        instance=request.url.path,
        headers=getattr(error, "headers", None),
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.error("request.unhandled_error", exc_info=error)
    return problem_response(
        500,
        "internal-error",
        "Something went wrong",
        "An unexpected error occurred; it has been logged. Please try again.",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PickupError, _pickup_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem bodies for the given statuses."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }
