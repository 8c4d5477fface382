"""Products and their stock: the pure domain (no I/O).

Stock is three counters per product, kept so that ``on_hand = available + reserved`` and none
is ever negative. ``available`` is stored rather than derived because DynamoDB condition
expressions cannot do arithmetic between attributes: the stock adapter moves ``available``
in the same atomic update as ``reserved`` or ``on_hand``.

- reserve (checkout):          available -= q, reserved += q   if available >= q
- confirm (picked up):         on_hand -= q,   reserved -= q   if reserved >= q
- release (cancel or expiry):  reserved -= q,  available += q  if reserved >= q
- restock:                     on_hand += q,   available += q
- adjust (count correction):   on_hand += d,   available += d  if available >= -d

:class:`StockLevels` is the reference implementation of that arithmetic; the adapter does the
same thing with conditional writes, and the property tests check one against the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from pickup.core.errors import Conflict, InvalidInput, NotFound

PRODUCT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
_PRODUCT_ID = re.compile(PRODUCT_ID_PATTERN)

# Kubernetes object names (DNS-1123 subdomains), optionally qualified by a namespace.
MANAGED_BY_PATTERN = (
    r"^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?/)?[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$"
)

MAX_LINE_QUANTITY = 999
# DynamoDB accepts at most 100 actions in one TransactWriteItems call.
MAX_LINES_PER_TRANSACTION = 100
MAX_STOCK = 1_000_000
MAX_RESTOCK = 100_000
MAX_REASON_LENGTH = 200

StockStatus = Literal["in_stock", "low_stock", "out_of_stock"]
AlertLevel = Literal["ok", "low", "critical", "out"]


class Keep(Enum):
    """Sentinel for "leave this field as it is" where ``None`` is a meaningful new value."""

    KEEP = "keep"


KEEP = Keep.KEEP


def is_product_id(value: object) -> bool:
    return isinstance(value, str) and _PRODUCT_ID.fullmatch(value) is not None


def require_product_id(value: object, field: str = "product_id") -> str:
    """``value`` if it is a well-formed product id, else :class:`InvalidInput`."""
    if not is_product_id(value):
        raise InvalidInput(
            f"{value!r} is not a product id: expected 1-64 lowercase letters, digits or '-', "
            "starting with a letter or digit",
            field=field,
        )
    return value  # type: ignore[return-value]


def invalid_input_from(error: ValidationError, prefix: str = "") -> InvalidInput:
    """The first problem of a pydantic error, as the domain's :class:`InvalidInput`."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__")
    field = f"{prefix}.{location}" if prefix and location else (location or prefix or None)
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return InvalidInput(f"{field}: {message}" if field else message, field=field)


# --- Errors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shortfall:
    """One line that could not be served: how many were asked for and how many are left."""

    product_id: str
    requested: int
    available: int
    # "unavailable" when staff switched the product off, whatever its stock.
    reason: Literal["insufficient", "unavailable"] = "insufficient"

    def as_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "requested": self.requested,
            "available": self.available,
            "reason": self.reason,
        }


class InsufficientStock(Conflict):
    type = "insufficient-stock"
    title = "Not enough stock"

    def __init__(self, shortfalls: Iterable[Shortfall]) -> None:
        self.shortfalls = sorted(shortfalls, key=lambda shortfall: shortfall.product_id)
        parts = []
        for shortfall in self.shortfalls:
            if shortfall.reason == "unavailable":
                parts.append(f"{shortfall.product_id} (not available at the moment)")
            else:
                parts.append(
                    f"{shortfall.product_id} (asked for {shortfall.requested}, "
                    f"{shortfall.available} available)"
                )
        super().__init__("Not enough stock for " + ", ".join(parts))

    def extensions(self) -> dict[str, Any]:
        return {"shortfalls": [shortfall.as_dict() for shortfall in self.shortfalls]}


class UnknownProduct(NotFound):
    type = "unknown-product"
    title = "Unknown product"

    def __init__(self, product_ids: Iterable[str]) -> None:
        self.product_ids = sorted(set(product_ids))
        noun = "product" if len(self.product_ids) == 1 else "products"
        super().__init__(f"No such {noun}: {', '.join(self.product_ids)}")

    def extensions(self) -> dict[str, Any]:
        return {"product_ids": self.product_ids}


@dataclass(frozen=True)
class Mismatch:
    """A confirm or release asked for more units than are reserved."""

    product_id: str
    requested: int
    reserved: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "requested": self.requested,
            "reserved": self.reserved,
        }


class ReservationMismatch(Conflict):
    """Confirming or releasing would take ``reserved`` below zero: the books disagree."""

    type = "reservation-mismatch"
    title = "The reservation does not match the reserved stock"

    def __init__(self, mismatches: Iterable[Mismatch]) -> None:
        self.mismatches = sorted(mismatches, key=lambda mismatch: mismatch.product_id)
        parts = [
            f"{mismatch.product_id} ({mismatch.requested} requested, {mismatch.reserved} reserved)"
            for mismatch in self.mismatches
        ]
        super().__init__("More units than are reserved for " + ", ".join(parts))

    def extensions(self) -> dict[str, Any]:
        return {"mismatches": [mismatch.as_dict() for mismatch in self.mismatches]}


# --- Stock arithmetic -----------------------------------------------------------------------


@dataclass(frozen=True)
class StockLevels:
    """The reference model of one product's stock. Every method returns new levels or raises.

    ``product_id`` only names the product in errors.
    """

    on_hand: int
    reserved: int
    available: int

    def __post_init__(self) -> None:
        if min(self.on_hand, self.reserved, self.available) < 0:
            raise ValueError(f"stock levels cannot be negative: {self}")
        if self.on_hand != self.available + self.reserved:
            raise ValueError(f"on_hand must equal available + reserved: {self}")

    @classmethod
    def initial(cls, on_hand: int) -> StockLevels:
        return cls(on_hand=on_hand, reserved=0, available=on_hand)

    def reserve(self, quantity: int, *, product_id: str = "") -> StockLevels:
        _positive(quantity)
        if self.available < quantity:
            raise InsufficientStock([Shortfall(product_id, quantity, self.available)])
        return StockLevels(self.on_hand, self.reserved + quantity, self.available - quantity)

    def confirm(self, quantity: int, *, product_id: str = "") -> StockLevels:
        _positive(quantity)
        if self.reserved < quantity:
            raise ReservationMismatch([Mismatch(product_id, quantity, self.reserved)])
        return StockLevels(self.on_hand - quantity, self.reserved - quantity, self.available)

    def release(self, quantity: int, *, product_id: str = "") -> StockLevels:
        _positive(quantity)
        if self.reserved < quantity:
            raise ReservationMismatch([Mismatch(product_id, quantity, self.reserved)])
        return StockLevels(self.on_hand, self.reserved - quantity, self.available + quantity)

    def restock(self, quantity: int, *, product_id: str = "") -> StockLevels:
        _positive(quantity)
        return StockLevels(self.on_hand + quantity, self.reserved, self.available + quantity)

    def adjust(self, delta: int, *, product_id: str = "") -> StockLevels:
        """Correct a miscount; only stock nobody has reserved can be written off."""
        if delta == 0:
            raise InvalidInput("an adjustment must change the stock", field="delta")
        if delta < 0 and self.available < -delta:
            raise InsufficientStock([Shortfall(product_id, -delta, self.available)])
        return StockLevels(self.on_hand + delta, self.reserved, self.available + delta)


def _positive(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise InvalidInput(f"quantity must be a positive integer, got {quantity!r}", "quantity")


# --- Products ---------------------------------------------------------------------------------


class ProductWithInventory(BaseModel):
    """A menu item and its stock, as stored in the products table."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    id: str = Field(pattern=PRODUCT_ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    category: str = Field("Other", min_length=1, max_length=60)
    price_cents: int = Field(ge=0, le=10_000_000)
    currency: str = Field("GBP", pattern=r"^[A-Z]{3}$")
    allergens: list[str] = Field(default_factory=list, max_length=20)
    image: str | None = Field(None, max_length=500)
    is_available: bool = True
    sort_order: int = Field(0, ge=-1_000_000, le=1_000_000)
    max_per_order: int = Field(20, ge=1, le=MAX_LINE_QUANTITY)
    on_hand: int = Field(0, ge=0, le=MAX_STOCK)
    reserved: int = Field(0, ge=0, le=MAX_STOCK)
    available: int = Field(0, ge=0, le=MAX_STOCK)
    low_stock_threshold: int = Field(5, ge=0, le=MAX_STOCK)
    critical_threshold: int = Field(2, ge=0, le=MAX_STOCK)
    reorder_quantity: int | None = Field(None, ge=0, le=MAX_STOCK)
    managed_by: str | None = Field(None, max_length=317, pattern=MANAGED_BY_PATTERN)
    version: int = Field(0, ge=0)
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("allergens")
    @classmethod
    def _allergens(cls, value: list[str]) -> list[str]:
        cleaned = [allergen.strip() for allergen in value]
        if any(not allergen or len(allergen) > 40 for allergen in cleaned):
            raise ValueError("each allergen must be 1-40 characters")
        return list(dict.fromkeys(cleaned))

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("/", "https://", "http://")) or any(c.isspace() for c in value):
            raise ValueError("must be a path starting with '/' or an http(s) URL")
        return value

    @field_validator("updated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _invariants(self) -> ProductWithInventory:
        if self.on_hand != self.available + self.reserved:
            raise ValueError(
                f"on_hand ({self.on_hand}) must equal available ({self.available}) "
                f"+ reserved ({self.reserved})"
            )
        if self.critical_threshold > self.low_stock_threshold:
            raise ValueError("critical_threshold cannot be above low_stock_threshold")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stock_status(self) -> StockStatus:
        """What a customer's badge shows; a product switched off by staff counts as sold out."""
        return stock_status_of(self.available, self.low_stock_threshold, self.is_available)

    @property
    def alert_level(self) -> AlertLevel:
        """How urgently staff should restock, from what customers can still buy."""
        return alert_level_of(self.available, self.low_stock_threshold, self.critical_threshold)

    @property
    def levels(self) -> StockLevels:
        return StockLevels(on_hand=self.on_hand, reserved=self.reserved, available=self.available)


def stock_status_of(available: int, low: int, is_available: bool = True) -> StockStatus:
    if not is_available or available <= 0:
        return "out_of_stock"
    if available <= low:
        return "low_stock"
    return "in_stock"


def alert_level_of(available: int, low: int, critical: int) -> AlertLevel:
    if available <= 0:
        return "out"
    if available <= critical:
        return "critical"
    if available <= low:
        return "low"
    return "ok"


# --- Lines and changes ------------------------------------------------------------------------


class StockLine(BaseModel):
    """``quantity`` units of one product, as reserved, confirmed or released together."""

    model_config = ConfigDict(frozen=True)

    product_id: str = Field(pattern=PRODUCT_ID_PATTERN)
    quantity: int = Field(ge=1, le=MAX_LINE_QUANTITY, strict=True)

    @classmethod
    def of(cls, product_id: str, quantity: int) -> StockLine:
        """A line, or :class:`InvalidInput` saying what is wrong with it."""
        try:
            return cls(product_id=product_id, quantity=quantity)
        except ValidationError as error:
            raise invalid_input_from(error) from None


def merge_lines(lines: Iterable[StockLine]) -> list[StockLine]:
    """One line per product, quantities summed, in product id order.

    A transaction may touch each item once only, and a fixed order keeps the request (and so
    its idempotency token's parameters) identical when a caller retries with reordered lines.
    """
    totals: dict[str, int] = {}
    for line in lines:
        if not isinstance(line, StockLine):
            raise InvalidInput(f"expected a StockLine, got {type(line).__name__}", "lines")
        totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    if not totals:
        raise InvalidInput("at least one line is required", field="lines")
    if len(totals) > MAX_LINES_PER_TRANSACTION:
        raise InvalidInput(
            f"at most {MAX_LINES_PER_TRANSACTION} different products at once, got {len(totals)}",
            field="lines",
        )
    merged = []
    for product_id in sorted(totals):
        if totals[product_id] > MAX_LINE_QUANTITY:
            raise InvalidInput(
                f"at most {MAX_LINE_QUANTITY} of {product_id} at once, got {totals[product_id]}",
                field="quantity",
            )
        merged.append(StockLine(product_id=product_id, quantity=totals[product_id]))
    return merged


class InventoryUpdate(BaseModel):
    """A validated staff change to one product's stock or thresholds.

    ``restock`` needs ``quantity``; ``adjust`` needs a non-zero ``delta``; ``set_thresholds``
    needs ``low_stock_threshold`` and ``critical_threshold``, and sets ``reorder_quantity`` and
    ``managed_by`` only when they are given (``None`` clears them).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    kind: Literal["restock", "adjust", "set_thresholds"]
    quantity: int | None = Field(None, ge=1, le=MAX_RESTOCK, strict=True)
    delta: int | None = Field(None, ge=-MAX_STOCK, le=MAX_STOCK, strict=True)
    reason: str | None = Field(None, max_length=MAX_REASON_LENGTH)
    low_stock_threshold: int | None = Field(None, ge=0, le=MAX_STOCK, strict=True)
    critical_threshold: int | None = Field(None, ge=0, le=MAX_STOCK, strict=True)
    reorder_quantity: int | None = Field(None, ge=0, le=MAX_STOCK, strict=True)
    managed_by: str | None = Field(None, max_length=317, pattern=MANAGED_BY_PATTERN)

    @model_validator(mode="after")
    def _fields_for_kind(self) -> InventoryUpdate:
        given = self.model_fields_set - {"kind", "reason"}
        allowed = {
            "restock": {"quantity"},
            "adjust": {"delta"},
            "set_thresholds": {
                "low_stock_threshold",
                "critical_threshold",
                "reorder_quantity",
                "managed_by",
            },
        }[self.kind]
        if extra := sorted(given - allowed):
            raise ValueError(f"{', '.join(extra)} cannot be given with kind {self.kind!r}")
        if self.kind == "restock" and self.quantity is None:
            raise ValueError("a restock needs a quantity")
        if self.kind == "adjust" and not self.delta:
            raise ValueError("an adjustment needs a non-zero delta")
        if self.kind == "set_thresholds":
            if self.low_stock_threshold is None or self.critical_threshold is None:
                raise ValueError("both low_stock_threshold and critical_threshold are required")
            if self.critical_threshold > self.low_stock_threshold:
                raise ValueError("critical_threshold cannot be above low_stock_threshold")
        return self

    @classmethod
    def parse(cls, **values: Any) -> InventoryUpdate:
        """Like the constructor, but failures are the domain's :class:`InvalidInput`."""
        try:
            return cls(**values)
        except ValidationError as error:
            raise invalid_input_from(error) from None

    @classmethod
    def restock(cls, quantity: int, reason: str | None = None) -> InventoryUpdate:
        return cls.parse(kind="restock", quantity=quantity, reason=reason)

    @classmethod
    def adjust(cls, delta: int, reason: str | None = None) -> InventoryUpdate:
        return cls.parse(kind="adjust", delta=delta, reason=reason)

    @classmethod
    def thresholds(
        cls,
        low: int,
        critical: int,
        reorder_quantity: int | Keep | None = KEEP,
        managed_by: str | Keep | None = KEEP,
        reason: str | None = None,
    ) -> InventoryUpdate:
        values: dict[str, Any] = {
            "kind": "set_thresholds",
            "low_stock_threshold": low,
            "critical_threshold": critical,
            "reason": reason,
        }
        if reorder_quantity is not KEEP:
            values["reorder_quantity"] = reorder_quantity
        if managed_by is not KEEP:
            values["managed_by"] = managed_by
        return cls.parse(**values)

    def sets(self, field: str) -> bool:
        """Whether this change writes ``field`` (optional threshold fields may be left alone)."""
        return field in self.model_fields_set

    def apply(self, levels: StockLevels, *, product_id: str = "") -> StockLevels:
        """The stock after this change; thresholds leave it as it is."""
        if self.kind == "restock":
            assert self.quantity is not None
            return levels.restock(self.quantity, product_id=product_id)
        if self.kind == "adjust":
            assert self.delta is not None
            return levels.adjust(self.delta, product_id=product_id)
        return levels
