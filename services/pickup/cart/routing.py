"""A route class for a hot JSON route that validates its body itself, when that is safe.

FastAPI's request handling (reading the body, ``json.loads``, solving the endpoint's
parameters, validating the body as Python objects) costs more CPU on the cart add than the
rest of the add. :class:`JsonBodyRoute` takes the common case on a shorter way: a body sent
as ``application/json`` that ``Model.model_validate_json`` accepts goes straight to the
endpoint. Everything else (another or no content type, an empty body, a body the model
refuses, FastAPI's request telemetry switched on) is handed to FastAPI's own handler, with the
body already read, so every refusal (422 problems with their ``errors``, 400 for an
unreadable body) is exactly FastAPI's, and the OpenAPI schema is FastAPI's for the
endpoint's declared signature.

The two ways validate the same model with the same rules; the short way parses the JSON with
Pydantic instead of ``json.loads`` and takes a body only when the model accepts it, so a body
either way would refuse gets FastAPI's answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi._body_limit import get_body_limit_error
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

# The content type the short way takes; any other (a charset, +json, none) goes FastAPI's way.
JSON = "application/json"


class JsonBodyRoute(APIRoute):
    """For an ``async`` endpoint ``(body: Model, request: Request)`` with no dependencies, no
    other parameters and a :class:`~fastapi.Response` for an answer (checked when the route
    is built)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        model, body_name, request_name = self._shape()
        endpoint = self.endpoint
        validate = model.model_validate_json

        async def short_way(request: Request) -> Response:
            if request.headers.get("content-type") != JSON or get_telemetry_data() is not None:
                return await handler(request)
            try:
                raw = await request.body()
            except HTTPException:
                raise
            except Exception as error:  # as FastAPI's handler answers a body it cannot read
                if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (
                    limited := get_body_limit_error(error)
                ):
                    raise limited from error
                raise HTTPException(400, "There was an error parsing the body") from error
            if not raw:
                return await handler(request)
            try:
                body = validate(raw)
            except ValidationError:
                return await handler(request)  # reads the same bytes, answers FastAPI's 422
            return await endpoint(**{body_name: body, request_name: request})

        return short_way

    def _shape(self) -> tuple[type[BaseModel], str, str]:
        dependant = self.dependant
        others = (
            dependant.path_params,
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.dependencies,
        )
        body_params = dependant.body_params
        model: Any = body_params[0].field_info.annotation if len(body_params) == 1 else None
        if (
            any(others)
            or dependant.request_param_name is None
            or not (isinstance(model, type) and issubclass(model, BaseModel))
            or self.body_field is None
            or self.body_field.field_info.annotation is not model
            or not inspect.iscoroutinefunction(self.endpoint)
        ):
            raise TypeError(
                f"{self.path}: JsonBodyRoute needs an async endpoint taking one body model "
                "and the request, with no dependencies or other parameters"
            )
        return model, body_params[0].name, dependant.request_param_name
