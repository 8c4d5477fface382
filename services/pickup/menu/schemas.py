from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

StockStatus = Literal["in_stock", "low_stock", "out_of_stock"]


class Stock(BaseModel):
    status: StockStatus
    available: int | None = Field(
        None, description="units left; given only when stock is low, so shoppers can hurry"
    )


class MenuProduct(BaseModel):
    id: str
    name: str
    description: str
    category: str
    price_cents: int
    currency: str
    allergens: list[str]
    image: str | None
    max_per_order: int
    stock: Stock


class MenuCategory(BaseModel):
    name: str
    products: list[MenuProduct]


class Menu(BaseModel):
    categories: list[MenuCategory]
