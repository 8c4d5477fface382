"""FastAPI dependencies giving routes the process's shared clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pickup.runtime import Resources


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
