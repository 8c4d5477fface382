"""Who is calling: the staff session behind the cookie, its role, and its CSRF token.

``require_staff`` admits both roles, ``require_admin`` only admins. Both refuse a request
without a live session (401) and, for every unsafe method (anything but GET, HEAD and
OPTIONS), one whose ``X-CSRF-Token`` header is not the session's token (403): the session
rides on a cookie the browser sends by itself, so a write must also prove it comes from a page
that could read the token.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Response

from pickup.api.deps import ResourcesDep
from pickup.runtime import Resources
from pickup.settings import Settings
from pickup.staff.errors import CsrfRejected, Forbidden, NotAuthenticated
from pickup.staff.sessions import SessionStore, StaffSession

SESSION_COOKIE = "pickup_staff_session"
CSRF_COOKIE = "pickup_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_store(resources: Resources) -> SessionStore:
    return SessionStore(resources.redis, resources.settings.session_ttl_seconds)


async def current_session(request: Request, resources: ResourcesDep) -> StaffSession:
    session = await session_store(resources).get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise NotAuthenticated("Sign in as staff first (your session is missing or has ended).")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise CsrfRejected(
                f"Send the session's CSRF token in the {CSRF_HEADER} header with every change."
            )
    return session


async def require_staff(
    session: Annotated[StaffSession, Depends(current_session)],
) -> StaffSession:
    return session


async def require_admin(
    session: Annotated[StaffSession, Depends(current_session)],
) -> StaffSession:
    if not session.is_admin:
        raise Forbidden("admin")
    return session


StaffDep = Annotated[StaffSession, Depends(require_staff)]
AdminDep = Annotated[StaffSession, Depends(require_admin)]


def set_session_cookies(
    response: Response, session_id: str, session: StaffSession, settings: Settings
) -> None:
    # No Max-Age: the browser forgets it on exit, and Redis ends it after idle time anyway.
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    # Readable by the staff pages' script, which echoes it in X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        session.csrf_token,
        path="/",
        secure=settings.secure_cookies,
        httponly=False,
        samesite="strict",
    )


def clear_session_cookies(response: Response, settings: Settings) -> None:
    for name, httponly in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(
            name, path="/", secure=settings.secure_cookies, httponly=httponly, samesite="strict"
        )
