"""Request and response models of the staff back office (``/api/admin``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pickup.core.inventory import MAX_REASON_LENGTH, MAX_RESTOCK, MAX_STOCK, AlertLevel, StockStatus
from pickup.core.orders import OrderStatus, ReservationState


def _reason(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if not value.isprintable():
        raise ValueError("must be one line of printable text")
    return value


Reason = Annotated[str, Field(min_length=1, max_length=MAX_REASON_LENGTH), AfterValidator(_reason)]
Note = Annotated[str, Field(max_length=500), AfterValidator(_reason)]

# --- Orders -----------------------------------------------------------------------------------


class LineSummary(BaseModel):
    product_id: str
    name: str
    quantity: int


class AdminOrderSummary(BaseModel):
    """One row of the order board."""

    order_id: uuid.UUID
    code: str
    status: OrderStatus
    version: int = Field(description="send it back as If-Match (or `version`) to change status")
    customer_name: str
    customer_email: str
    pickup_at: datetime
    estimated_ready_at: datetime | None
    special_instructions: str | None
    items: list[LineSummary]
    total_cents: int
    currency: str
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[AdminOrderSummary]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class StaffRef(BaseModel):
    id: uuid.UUID
    display_name: str
    email: str


class AdminHistoryEntry(BaseModel):
    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: str = Field(description="customer, staff or system")
    staff: StaffRef | None = Field(description="who, when a staff member made the change")
    note: str | None
    at: datetime


StockEffect = Literal["held", "deducted", "released"]


class LineImpact(BaseModel):
    """What one line did to stock: units held, taken out of stock at pickup, or put back."""

    product_id: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int
    effect: StockEffect
    on_hand_delta: int
    reserved_delta: int
    available_delta: int


class LedgerEntryOut(BaseModel):
    product_id: str
    kind: str
    delta_on_hand: int
    delta_reserved: int
    delta_available: int
    on_hand_after: int
    reserved_after: int
    available_after: int | None
    reason: str | None
    staff_user_id: uuid.UUID | None
    at: datetime


class NotificationOut(BaseModel):
    channel: str
    template: str
    recipient: str
    status: str
    error: str | None
    attempt: int
    at: datetime


class AdminOrderDetail(AdminOrderSummary):
    customer_phone: str | None
    sms_opt_in: bool
    reservation_state: ReservationState
    reservation_expires_at: datetime | None
    subtotal_cents: int
    allowed_transitions: list[OrderStatus] = Field(
        description="the statuses staff may move this order to now"
    )
    lines: list[LineImpact]
    history: list[AdminHistoryEntry]
    ledger: list[LedgerEntryOut] = Field(description="stock movements recorded for this order")
    notifications: list[NotificationOut]


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus
    version: int | None = Field(
        None, ge=1, description="the version you saw; or send it as If-Match"
    )
    note: Note | None = None


# --- Inventory --------------------------------------------------------------------------------


class InventoryItem(BaseModel):
    product_id: str
    name: str
    category: str
    is_available: bool
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int
    critical_threshold: int
    reorder_quantity: int | None
    status: AlertLevel = Field(description="ok, low, critical or out, from what is available")
    stock_status: StockStatus = Field(description="what customers see")
    managed_by: str | None = Field(
        description="the InventoryThreshold resource that owns the thresholds, if any"
    )
    thresholds_editable: bool
    updated_at: datetime


class InventoryList(BaseModel):
    items: list[InventoryItem]


class Restock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(ge=1, le=MAX_RESTOCK, strict=True, description="units delivered")
    reason: Reason


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: int = Field(
        ge=-MAX_STOCK,
        le=MAX_STOCK,
        strict=True,
        description="units to add (positive) or write off (negative); not zero",
    )
    reason: Reason


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low_stock_threshold: int = Field(ge=0, le=MAX_STOCK, strict=True)
    critical_threshold: int = Field(ge=0, le=MAX_STOCK, strict=True)
    reorder_quantity: int | None = Field(
        None, ge=0, le=MAX_STOCK, strict=True, description="order in multiples of this"
    )


class Availability(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_available: bool = Field(strict=True, description="false: sold out until switched back")


class ReorderSuggestion(BaseModel):
    product_id: str
    name: str
    available: int
    reserved: int
    on_hand: int
    units_sold: int = Field(description="units ordered over the velocity window")
    daily_velocity: float = Field(description="units per day over the velocity window")
    days_of_cover: float | None = Field(description="days the available units last; null: no sales")
    target_stock: int
    suggested_quantity: int


class ReorderSuggestions(BaseModel):
    velocity_days: int
    cover_days: float
    items: list[ReorderSuggestion]


# --- Metrics ----------------------------------------------------------------------------------


class PrepTime(BaseModel):
    orders: int = Field(description="orders that became ready today with a preparing step")
    average_minutes: float | None
    p90_minutes: float | None


class QueueDepth(BaseModel):
    name: str
    visible: int | None
    in_flight: int | None
    error: str | None = None


class HourCount(BaseModel):
    hour: str = Field(description="the start of the hour, local time, e.g. 07:00")
    orders: int


class Metrics(BaseModel):
    date: str = Field(description="today in the shop's time zone")
    timezone: str
    orders_today: int
    orders_by_status: dict[str, int]
    preparation: PrepTime
    orders_per_hour: list[HourCount]
    queues: list[QueueDepth]
    low_stock_count: int | None = Field(description="null when the stock table cannot be read")
    notification_failures_today: int
    generated_at: datetime
