from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from pickup.api.deps import ResourcesDep
from pickup.api.problems import problem_responses
from pickup.api.ratelimit import rate_limit
from pickup.staff import service
from pickup.staff.auth import (
    SESSION_COOKIE,
    StaffDep,
    clear_session_cookies,
    session_store,
    set_session_cookies,
)
from pickup.staff.schemas import LoginRequest, SessionOut
from pickup.staff.sessions import StaffSession

router = APIRouter(prefix="/api/staff", tags=["staff sign-in"])


def _session_out(session: StaffSession, ttl: int) -> SessionOut:
    return SessionOut(
        user_id=session.user_id,
        email=session.email,
        display_name=session.display_name,
        role=session.role,  # type: ignore[arg-type]
        csrf_token=session.csrf_token,
        expires_in_seconds=ttl,
    )


@router.post(
    "/login",
    response_model=SessionOut,
    summary="Sign in: sets the session cookie and returns the CSRF token",
    responses=problem_responses(401, 413, 415, 422, 423, 429, 503),
    dependencies=[Depends(rate_limit("login", "rate_limit_login_per_minute"))],
)
async def login(
    body: LoginRequest, request: Request, response: Response, resources: ResourcesDep
) -> SessionOut:
    settings = resources.settings
    signed_in = await service.login(
        resources.sessions,
        session_store(resources),
        settings,
        email=body.email,
        password=body.password,
        previous_session_id=request.cookies.get(SESSION_COOKIE),
    )
    set_session_cookies(response, signed_in.session_id, signed_in.session, settings)
    response.headers["Cache-Control"] = "no-store"
    return _session_out(signed_in.session, settings.session_ttl_seconds)


@router.post(
    "/logout",
    status_code=204,
    summary="Sign out: ends the session",
    responses=problem_responses(401, 403, 503),
)
async def logout(request: Request, _staff: StaffDep, resources: ResourcesDep) -> Response:
    await session_store(resources).delete(request.cookies.get(SESSION_COOKIE))
    response = Response(status_code=204)
    clear_session_cookies(response, resources.settings)
    return response


@router.get(
    "/me",
    response_model=SessionOut,
    summary="Who is signed in, with the session's CSRF token",
    responses=problem_responses(401, 503),
)
async def me(staff: StaffDep, response: Response, resources: ResourcesDep) -> SessionOut:
    response.headers["Cache-Control"] = "no-store"
    return _session_out(staff, resources.settings.session_ttl_seconds)
