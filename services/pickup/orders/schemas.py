"""Request and response models of the customer order API."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, model_validator

from pickup.core.inventory import PRODUCT_ID_PATTERN
from pickup.core.orders import OrderStatus

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _plain_text(value: str) -> str:
    """Trimmed text without control characters (newlines allowed only where noted)."""
    value = value.strip()
    if any(unicodedata.category(char) == "Cc" and char not in "\n\t" for char in value):
        raise ValueError("must not contain control characters")
    return value


def _one_line(value: str) -> str:
    value = _plain_text(value)
    if "\n" in value or "\t" in value:
        raise ValueError("must be a single line")
    if not value:
        raise ValueError("must not be blank")
    return value


def _phone(value: str) -> str:
    compact = re.sub(r"[\s().-]", "", value)
    if not E164.match(compact):
        raise ValueError("must be an international number in E.164 form, e.g. +447700900123")
    return compact


Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_one_line)]
Phone = Annotated[str, Field(max_length=32), AfterValidator(_phone)]
Instructions = Annotated[str, Field(max_length=500), AfterValidator(_plain_text)]


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="the name we call out at the counter")
    email: EmailStr = Field(max_length=254, description="where the confirmation goes")
    phone: Phone | None = Field(None, description="E.164, e.g. +447700900123")
    sms_opt_in: bool = Field(False, description="text me when my order is ready")

    @model_validator(mode="after")
    def _sms_needs_phone(self) -> Customer:
        if self.sms_opt_in and not self.phone:
            raise ValueError("a phone number is needed for text messages")
        return self


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=PRODUCT_ID_PATTERN, max_length=64)
    quantity: int = Field(ge=1, le=99)


class CheckoutRequest(BaseModel):
    """Place an order. Without ``items`` the order is the shopper's cart."""

    model_config = ConfigDict(extra="forbid")

    customer: Customer
    pickup_time: datetime | None = Field(
        None,
        description="when to collect, with a UTC offset; omit for as soon as possible",
    )
    special_instructions: Instructions | None = Field(
        None, description="at most 500 characters, e.g. 'no nuts please'"
    )
    items: list[OrderLineIn] | None = Field(
        None,
        min_length=1,
        max_length=50,
        description="the lines to order; omit to order the cart (cookie or X-Cart-Token)",
    )


class OrderLineOut(BaseModel):
    product_id: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class CheckoutAccepted(BaseModel):
    """The order is accepted; it is confirmed shortly (watch ``status_url``)."""

    order_id: uuid.UUID
    code: str = Field(description="the short code to give at the counter")
    status: OrderStatus
    status_url: str
    details_url: str
    lookup_token: str = Field(
        description="proves you placed the order: send it as X-Order-Token (or ?token=) "
        "to see the details; it is shown only in this response"
    )
    pickup_at: datetime
    estimated_pickup_at: datetime
    items: list[OrderLineOut]
    subtotal_cents: int
    total_cents: int
    currency: str


StepState = Literal["done", "current", "upcoming", "skipped"]


class ProgressStep(BaseModel):
    key: str
    label: str
    state: StepState


class OrderStatusView(BaseModel):
    """What a customer sees while waiting: no personal data."""

    order_id: uuid.UUID
    code: str
    status: OrderStatus
    label: str
    message: str
    steps: list[ProgressStep]
    pickup_at: datetime
    estimated_ready_at: datetime | None
    updated_at: datetime
    final: bool


class HistoryEntry(BaseModel):
    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: str
    note: str | None
    at: datetime


class OrderDetails(BaseModel):
    order_id: uuid.UUID
    code: str
    status: OrderStatus
    customer: Customer
    special_instructions: str | None
    pickup_at: datetime
    estimated_ready_at: datetime | None
    items: list[OrderLineOut]
    subtotal_cents: int
    total_cents: int
    currency: str
    history: list[HistoryEntry]
    created_at: datetime
    updated_at: datetime


class PickupSlotView(BaseModel):
    start: datetime
    end: datetime
    available: bool
    remaining: int


class PickupSlots(BaseModel):
    timezone: str
    asap: datetime | None = Field(description="the earliest pickup time with room, if any")
    slots: list[PickupSlotView]
