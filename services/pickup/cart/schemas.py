from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from pickup.core.inventory import MAX_LINE_QUANTITY, PRODUCT_ID_PATTERN
from pickup.menu.schemas import Stock

ProductId = Annotated[
    str, Field(pattern=PRODUCT_ID_PATTERN, max_length=64, examples=["flat-white"])
]


class CartAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: int = Field(
        1,
        ge=1,
        le=MAX_LINE_QUANTITY,
        strict=True,
        description="units to add (at most PICKUP_CART_MAX_QUANTITY in one line)",
    )


class CartUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: int = Field(
        ge=0,
        le=MAX_LINE_QUANTITY,
        strict=True,
        description="the line's new quantity; 0 removes the line",
    )


class CartRemove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId


LineIssueCode = Literal[
    "unknown_product", "unavailable", "out_of_stock", "insufficient_stock", "over_limit"
]


class LineIssue(BaseModel):
    """Why a line cannot be ordered as it is."""

    code: LineIssueCode = Field(
        description="unknown_product: no longer on the menu; unavailable: switched off by the "
        "shop; out_of_stock: none left; insufficient_stock: fewer left than in the cart; "
        "over_limit: more than one order may hold"
    )
    message: str = Field(description="what to tell the shopper")
    max_quantity: int = Field(description="how many of it the line may hold now (0: none)")


class CartLine(BaseModel):
    product_id: str
    name: str = Field(description="the product's name (its id if it is no longer on the menu)")
    unit_price_cents: int | None = Field(
        description="the current price; null when the product is no longer on the menu"
    )
    quantity: int
    line_total_cents: int | None = Field(description="unit price times quantity")
    stock: Stock
    fulfillable: bool = Field(description="false when the line cannot be ordered as it is")
    issue: LineIssue | None = Field(None, description="set exactly when fulfillable is false")


class CartTotals(BaseModel):
    subtotal_cents: int = Field(description="the sum of the line totals of products on the menu")
    item_count: int = Field(description="units in the cart")
    line_count: int
    currency: str


class CartView(BaseModel):
    """The cart with server-side prices and each line's live stock."""

    lines: list[CartLine]
    totals: CartTotals
    checkout_ready: bool = Field(
        description="the cart has lines and every one can be ordered as it is"
    )
    max_lines: int = Field(description="different products a cart may hold")
    max_quantity: int = Field(description="units of one product a line may hold")
