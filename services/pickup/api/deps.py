"""FastAPI dependencies giving routes the process's shared clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pickup.runtime import Resources


async def get_resources(request: Request) -> Resources:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    # hop on every request for what is an attribute read.
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
