"""The staff pages: sign-in, the order board, inventory and metrics, under ``/admin``.

Every page but the sign-in form needs a staff session, checked here on the server before
anything is rendered: a browser without one is sent to ``/admin/login?next=<page>``, and any
other client (one that does not ask for HTML) gets the API's 401 ``not-authenticated``
problem. The pages then talk to the JSON API (``/api/admin``, ``/api/staff``) from the ES
modules in ``web/static/js/staff-*.js``; like the customer pages they carry no inline code,
so the same Content-Security-Policy holds.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pickup.api.deps import ResourcesDep
from pickup.pages.endpoints import PAGE_HEADERS
from pickup.pages.templating import environment
from pickup.runtime import Resources
from pickup.staff.auth import SESSION_COOKIE, session_store
from pickup.staff.errors import NotAuthenticated
from pickup.staff.sessions import StaffSession

router = APIRouter(include_in_schema=False)

LOGIN_PATH = "/admin/login"
BOARD_PATH = "/admin"
# Signed-in pages: never kept by a shared cache, and not shown again from history after
# sign-out without asking the server.
STAFF_HEADERS = {**PAGE_HEADERS, "Cache-Control": "no-store"}


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: only a staff page of this site (no open redirect)."""
    if not value or not value.startswith(BOARD_PATH) or value.startswith(LOGIN_PATH):
        return BOARD_PATH
    if "//" in value or "\\" in value or any(ord(char) < 0x20 for char in value):
        return BOARD_PATH
    rest = value[len(BOARD_PATH) :]
    if rest and rest[0] not in "/?":
        return BOARD_PATH
    return value


async def _session(request: Request, resources: Resources) -> StaffSession | None:
    return await session_store(resources).get(request.cookies.get(SESSION_COOKIE))


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(
        f"{LOGIN_PATH}?{urlencode({'next': target})}", 303, headers={"Cache-Control": "no-store"}
    )


def _render(
    request: Request,
    resources: Resources,
    template: str,
    *,
    page: str,
    title: str,
    staff: StaffSession | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    settings = resources.settings
    html = (
        environment()
        .get_template(f"staff/{template}")
        .render(
            request=request,
            page=page,
            title=title,
            staff=staff,
            shop={
                "name": settings.shop_name,
                "currency": settings.currency,
                "timezone": settings.timezone,
            },
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=STAFF_HEADERS)


async def _staff_page(
    request: Request, resources: Resources, template: str, *, page: str, title: str
) -> Response:
    staff = await _session(request, resources)
    if staff is None:
        if wants_html(request):
            return _login_redirect(request)
        raise NotAuthenticated("Sign in as staff first (your session is missing or has ended).")
    return _render(request, resources, template, page=page, title=title, staff=staff)


@router.get(LOGIN_PATH, response_class=HTMLResponse, response_model=None)
async def staff_login_page(
    request: Request,
    resources: ResourcesDep,
    next_page: str | None = Query(None, alias="next", max_length=500),
) -> Response:
    target = safe_next(next_page)
    if await _session(request, resources) is not None:
        return RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})
    return _render(
        request,
        resources,
        "login.html",
        page="staff-login",
        title="Staff sign-in",
        staff=None,
        next_url=target,
        signed_out=request.query_params.get("signed_out") == "1",
    )


@router.get(BOARD_PATH, response_class=HTMLResponse, response_model=None)
async def staff_board_page(request: Request, resources: ResourcesDep) -> Response:
    return await _staff_page(request, resources, "board.html", page="staff-board", title="Orders")


@router.get("/admin/inventory", response_class=HTMLResponse, response_model=None)
async def staff_inventory_page(request: Request, resources: ResourcesDep) -> Response:
    return await _staff_page(
        request, resources, "inventory.html", page="staff-inventory", title="Inventory"
    )


@router.get("/admin/metrics", response_class=HTMLResponse, response_model=None)
async def staff_metrics_page(request: Request, resources: ResourcesDep) -> Response:
    return await _staff_page(
        request, resources, "metrics.html", page="staff-metrics", title="Today's metrics"
    )
