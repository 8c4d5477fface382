"""Stock as staff manage it: levels, restock and adjustments with a ledger, thresholds,
availability, low stock and reorder suggestions.

A restock or an adjustment is a conditional update in DynamoDB (the store of record for
stock) and a ledger row in PostgreSQL naming the staff member and the reason. The two stores
cannot share a transaction, so the PostgreSQL transaction is opened first and committed right
after the DynamoDB update: a database that is down refuses the change before any stock moves,
and the remaining window (a commit failing after the update) is logged with every figure
needed to write the row by hand.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import UTC, datetime, timedelta

from pickup import live
from pickup.adapters.dynamodb import ChangeNote
from pickup.admin import repository
from pickup.admin.schemas import (
    InventoryItem,
    InventoryList,
    ReorderSuggestion,
    ReorderSuggestions,
)
from pickup.core.errors import Conflict, InvalidInput
from pickup.core.inventory import (
    KEEP,
    Keep,
    ProductWithInventory,
    UnknownProduct,
    require_product_id,
)
from pickup.menu.cache import invalidate_menu
from pickup.orders.repository import database_errors
from pickup.runtime import Resources
from pickup.staff.sessions import StaffSession
from pickup.worker.repository import add_ledger_entry
from pickup.worker.stock_events import ledger_change_id

logger = logging.getLogger("pickup.admin.inventory")

UNAVAILABLE = "Stock cannot be changed right now (the ledger database is unreachable)."


class ThresholdsManaged(Conflict):
    type = "thresholds-managed"
    title = "These thresholds are managed by an InventoryThreshold resource"

    def __init__(self, product_id: str, managed_by: str) -> None:
        super().__init__(
            f"The thresholds of {product_id} come from the InventoryThreshold resource "
            f"{managed_by}; change them there (kubectl edit inventorythreshold)."
        )
        self.managed_by = managed_by

    def extensions(self) -> dict[str, str]:
        return {"managed_by": self.managed_by}


def item_view(product: ProductWithInventory) -> InventoryItem:
    return InventoryItem(
        product_id=product.id,
        name=product.name,
        category=product.category,
        is_available=product.is_available,
        on_hand=product.on_hand,
        reserved=product.reserved,
        available=product.available,
        low_stock_threshold=product.low_stock_threshold,
        critical_threshold=product.critical_threshold,
        reorder_quantity=product.reorder_quantity,
        status=product.alert_level,
        stock_status=product.stock_status,
        managed_by=product.managed_by,
        thresholds_editable=product.managed_by is None,
        updated_at=product.updated_at,
    )


async def list_inventory(resources: Resources) -> InventoryList:
    products = await resources.inventory.list_products(consistent_read=True)
    return InventoryList(items=[item_view(product) for product in products])


async def low_stock(resources: Resources) -> InventoryList:
    products = await resources.inventory.list_products(consistent_read=True)
    low = [product for product in products if product.alert_level != "ok"]
    low.sort(key=lambda product: (product.available, product.name))
    return InventoryList(items=[item_view(product) for product in low])


async def _require(resources: Resources, product_id: str) -> ProductWithInventory:
    product = await resources.inventory.get_product(
        require_product_id(product_id), consistent_read=True
    )
    if product is None:
        raise UnknownProduct([product_id])
    return product


async def _after_stock_change(
    resources: Resources, product: ProductWithInventory, change: str, staff: StaffSession
) -> None:
    await invalidate_menu(resources.redis)
    view = item_view(product).model_dump(mode="json")
    await live.publish(
        resources.redis,
        live.STAFF,
        "stock.changed",
        {**view, "change": change, "by": staff.display_name},
        max_len=resources.settings.live_history_size,
    )


async def _move_stock(
    resources: Resources,
    product_id: str,
    kind: str,
    amount: int,
    reason: str,
    staff: StaffSession,
) -> InventoryItem:
    require_product_id(product_id)
    product: ProductWithInventory | None = None
    try:
        async with database_errors(UNAVAILABLE), resources.sessions.begin() as session:
            await session.connection()  # a database that is down refuses before stock moves
            change = ChangeNote(uuid.uuid4().hex, reason, str(staff.user_id))
            if kind == "restock":
                product = await resources.inventory.restock(product_id, amount, change=change)
            else:
                product = await resources.inventory.adjust(product_id, amount, change=change)
            await add_ledger_entry(
                session,
                dict(
                    product_id=product_id,
                    kind=kind,
                    delta_on_hand=amount,
                    delta_reserved=0,
                    delta_available=amount,
                    on_hand_after=product.on_hand,
                    reserved_after=product.reserved,
                    available_after=product.available,
                    staff_user_id=staff.user_id,
                    reason=reason,
                    # The stream consumer keys its row for this change the same way, so
                    # the change is in the ledger once whichever of the two writes first.
                    source_event_id=ledger_change_id(change.change_id),
                    created_at=datetime.now(UTC),
                ),
            )
    except Exception:
        if product is not None:  # the stock moved but its ledger row is lost
            logger.error(
                "inventory.ledger_write_failed product_id=%s kind=%s amount=%s staff=%s "
                "reason=%r on_hand=%s reserved=%s available=%s",
                product_id,
                kind,
                amount,
                staff.user_id,
                reason,
                product.on_hand,
                product.reserved,
                product.available,
            )
        raise
    logger.info(
        "inventory.%s product_id=%s amount=%s staff=%s", kind, product_id, amount, staff.user_id
    )
    await _after_stock_change(resources, product, kind, staff)
    return item_view(product)


async def restock(
    resources: Resources, product_id: str, quantity: int, reason: str, staff: StaffSession
) -> InventoryItem:
    return await _move_stock(resources, product_id, "restock", quantity, reason, staff)


async def adjust(
    resources: Resources, product_id: str, delta: int, reason: str, staff: StaffSession
) -> InventoryItem:
    return await _move_stock(resources, product_id, "adjust", delta, reason, staff)


async def set_thresholds(
    resources: Resources,
    product_id: str,
    *,
    low: int,
    critical: int,
    reorder_quantity: int | Keep | None = KEEP,
    staff: StaffSession,
) -> InventoryItem:
    if critical > low:
        raise InvalidInput(
            "critical_threshold cannot be above low_stock_threshold",
            field="body.critical_threshold",
        )
    current = await _require(resources, product_id)
    if current.managed_by is not None:
        raise ThresholdsManaged(product_id, current.managed_by)
    product = await resources.inventory.set_thresholds(
        product_id, low, critical, reorder_quantity=reorder_quantity
    )
    await _after_stock_change(resources, product, "thresholds", staff)
    return item_view(product)


async def set_availability(
    resources: Resources, product_id: str, is_available: bool, staff: StaffSession
) -> InventoryItem:
    require_product_id(product_id)
    product = await resources.inventory.set_availability(product_id, is_available)
    logger.info(
        "inventory.availability product_id=%s available=%s staff=%s",
        product_id,
        is_available,
        staff.user_id,
    )
    await _after_stock_change(resources, product, "availability", staff)
    return item_view(product)


def suggest(
    product: ProductWithInventory, units_sold: int, *, velocity_days: int, cover_days: float
) -> ReorderSuggestion:
    """The reorder suggestion for one product (the formula is in docs/staff.md).

    velocity = units sold over the window / window days
    target   = ceil(velocity * cover days) + low-stock threshold (the safety stock)
    suggest  = max(0, target - available), rounded up to a multiple of reorder_quantity
    """
    velocity = units_sold / velocity_days
    target = math.ceil(velocity * cover_days) + product.low_stock_threshold
    shortfall = max(0, target - product.available)
    if shortfall and product.reorder_quantity:
        shortfall = math.ceil(shortfall / product.reorder_quantity) * product.reorder_quantity
    return ReorderSuggestion(
        product_id=product.id,
        name=product.name,
        available=product.available,
        reserved=product.reserved,
        on_hand=product.on_hand,
        units_sold=units_sold,
        daily_velocity=round(velocity, 2),
        days_of_cover=round(product.available / velocity, 1) if velocity else None,
        target_stock=target,
        suggested_quantity=shortfall,
    )


async def reorder_suggestions(
    resources: Resources, now: datetime | None = None
) -> ReorderSuggestions:
    settings = resources.settings
    now = now or datetime.now(UTC)
    since = now - timedelta(days=settings.sales_velocity_days)
    products = await resources.inventory.list_products(consistent_read=True)
    detail = "Sales figures cannot be read right now. Please try again in a moment."
    async with database_errors(detail), resources.sessions() as session:
        sold = await repository.units_sold_since(session, since)
    suggestions = [
        suggest(
            product,
            sold.get(product.id, 0),
            velocity_days=settings.sales_velocity_days,
            cover_days=settings.reorder_cover_days,
        )
        for product in products
    ]
    wanted = [item for item in suggestions if item.suggested_quantity > 0]
    wanted.sort(
        key=lambda item: (
            item.days_of_cover if item.days_of_cover is not None else math.inf,
            -item.suggested_quantity,
            item.product_id,
        )
    )
    return ReorderSuggestions(
        velocity_days=settings.sales_velocity_days,
        cover_days=settings.reorder_cover_days,
        items=wanted,
    )
