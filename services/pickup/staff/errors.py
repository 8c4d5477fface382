"""The problems of staff sign-in and authorisation (rendered by ``api/problems.py``)."""

from __future__ import annotations

from typing import Any

from pickup.core.errors import Conflict, PickupError


class NotAuthenticated(PickupError):
    type = "not-authenticated"
    status = 401
    title = "Sign in first"


class Forbidden(PickupError):
    type = "forbidden"
    status = 403
    title = "Your role may not do this"

    def __init__(self, required_role: str) -> None:
        super().__init__(f"This needs the {required_role} role.")
        self.required_role = required_role

    def extensions(self) -> dict[str, Any]:
        return {"required_role": self.required_role}


class CsrfRejected(PickupError):
    type = "csrf-token-invalid"
    status = 403
    title = "The CSRF token is missing or wrong"


class InvalidCredentials(PickupError):
    type = "invalid-credentials"
    status = 401
    title = "Wrong email or password"


class AccountLocked(PickupError):
    type = "account-locked"
    status = 423
    title = "Too many failed sign-ins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Sign-in for this account is locked after repeated failures; "
            f"try again in {retry_after} seconds."
        )
        self.retry_after = retry_after

    def extensions(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class StaffNotFound(PickupError):
    type = "staff-not-found"
    status = 404
    title = "No such staff account"


class StaffExists(Conflict):
    type = "staff-exists"
    title = "A staff account with that email exists"
