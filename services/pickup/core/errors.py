"""The one error hierarchy. The API renders each as an RFC 9457 problem response.

``type`` is a stable slug (the problem type URI is built from it), ``status`` the HTTP status
an entry point should answer with, ``title`` a short human summary shared by every instance.
Subclasses add fields that go into the problem body as extension members via ``extensions``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PickupError(Exception):
    type: ClassVar[str] = "internal-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Something went wrong"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)

    def extensions(self) -> dict[str, Any]:
        """Extra members of the problem body (machine-readable details)."""
        return {}


class InvalidInput(PickupError):
    """Input a domain operation cannot accept (bad quantity, over-long text, malformed id)."""

    type = "invalid-input"
    status = 422
    title = "The request is not valid"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field

    def extensions(self) -> dict[str, Any]:
        if self.field is None:
            return {}
        return {"errors": [{"field": self.field, "message": self.detail}]}


class NotFound(PickupError):
    type = "not-found"
    status = 404
    title = "Not found"


class Conflict(PickupError):
    type = "conflict"
    status = 409
    title = "The request conflicts with the current state"


class ServiceUnavailable(PickupError):
    """A dependency (PostgreSQL, Redis, AWS) cannot be reached; the caller may retry."""

    type = "service-unavailable"
    status = 503
    title = "Temporarily unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
