"""Request and response models of staff sign-in and accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from pickup.staff.passwords import MIN_PASSWORD_LENGTH

Role = Literal["staff", "admin"]
MAX_PASSWORD_LENGTH = 1024  # Argon2 hashes anything, but nobody needs a megabyte password


def _one_line(value: str) -> str:
    value = value.strip()
    if not value or any(char in value for char in "\r\n\t") or not value.isprintable():
        raise ValueError("must be one line of printable text")
    return value


DisplayName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_one_line)]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Not EmailStr: any text signs in or fails alike. Control characters never make an
    # address, and PostgreSQL text cannot hold NUL, so they are refused here (422).
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^\x00-\x1f\x7f]+$")
    # No minimum here: a short password is simply wrong, and saying so reveals nothing.
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class StaffOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    is_active: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime


class SessionOut(BaseModel):
    """Who is signed in. Send ``csrf_token`` as ``X-CSRF-Token`` with every write."""

    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    csrf_token: str
    expires_in_seconds: int = Field(description="idle seconds before the session ends")


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=254)
    display_name: DisplayName
    role: Role = "staff"
    password: Password


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    role: Role | None = None
    is_active: bool | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password
