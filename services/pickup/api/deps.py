"""FastAPI dependencies giving routes the process's shared clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pickup.runtime import Resources


def resources_of(request: Request) -> Resources:
    """The app's clients, for code that has the request (the dependency is for signatures)."""
    return request.app.state.resources


async def get_resources(request: Request) -> Resources:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    # hop on every request for what is an attribute read.
    return resources_of(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]
