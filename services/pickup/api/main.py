"""ASGI entry point for servers that import the app by name (``uvicorn --factory``)."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from pickup.api.app import create_app
from pickup.settings import SettingsError, load_settings


def create() -> FastAPI:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"pickup: configuration error:\n{error}", file=sys.stderr)
        raise SystemExit(2) from None
    # A server process serves this one app for its whole life.
    return create_app(settings, tune_gc=True)
