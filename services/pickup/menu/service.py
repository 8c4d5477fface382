"""The customer menu: products grouped by category with their live stock status."""

from __future__ import annotations

from itertools import groupby

from pickup.core.inventory import ProductWithInventory
from pickup.menu.schemas import Menu, MenuCategory, MenuProduct, Stock


def menu_product(product: ProductWithInventory) -> MenuProduct:
    status = product.stock_status if product.is_available else "out_of_stock"
    return MenuProduct(
        id=product.id,
        name=product.name,
        description=product.description,
        category=product.category,
        price_cents=product.price_cents,
        currency=product.currency,
        allergens=list(product.allergens),
        image=product.image,
        max_per_order=product.max_per_order,
        stock=Stock(
            status=status,
            available=product.available if status == "low_stock" else None,
        ),
    )


def build_menu(products: list[ProductWithInventory]) -> Menu:
    ordered = sorted(products, key=lambda p: (p.category, p.sort_order, p.name))
    # Categories appear in the order of their first product's sort order.
    groups = [
        MenuCategory(name=category, products=[menu_product(p) for p in items])
        for category, items in groupby(ordered, key=lambda p: p.category)
    ]
    groups.sort(key=lambda group: min(p.sort_order for p in products if p.category == group.name))
    return Menu(categories=groups)
