"""What a DynamoDB Stream record of the products table means for stock. Pure: no I/O.

A record becomes a :class:`StockChange` when it moved stock: the ledger kind follows from
which numbers moved (reserve, confirm, release, restock, adjust, or ``set`` for a new,
reloaded or deleted product). A change that took ``available`` down into a more severe alert
level (ok -> low -> critical -> out) is one threshold crossing and gets one alert, whatever
the size of the step; staying within a level, or going up, raises none.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pickup.adapters.dynamodb import from_attribute
from pickup.core.inventory import alert_level_of, stock_status_of

SEVERITY = {"ok": 0, "low": 1, "critical": 2, "out": 3}
ALERT_TYPES = {
    "low": "inventory.low_stock",
    "critical": "inventory.critical_stock",
    "out": "inventory.out_of_stock",
}


@dataclass(frozen=True)
class Levels:
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int
    critical_threshold: int

    @property
    def alert_level(self) -> str:
        return alert_level_of(self.available, self.low_stock_threshold, self.critical_threshold)

    @property
    def stock_status(self) -> str:
        return stock_status_of(self.available, self.low_stock_threshold)


@dataclass(frozen=True)
class StockChange:
    event_id: str
    product_id: str
    product_name: str
    kind: str
    before: Levels | None
    after: Levels
    reorder_quantity: int | None
    occurred_at: datetime
    removed: bool = False
    # A change made by hand carries its own id, reason and author (see ChangeNote): the
    # ledger row is keyed by that id, the same key the API's own ledger row uses.
    ledger_id: str | None = None
    reason: str | None = None
    staff_user_id: uuid.UUID | None = None

    @property
    def delta_on_hand(self) -> int:
        return self.after.on_hand - (self.before.on_hand if self.before else 0)

    @property
    def delta_reserved(self) -> int:
        return self.after.reserved - (self.before.reserved if self.before else 0)

    @property
    def delta_available(self) -> int:
        return self.after.available - (self.before.available if self.before else 0)

    @property
    def crossing(self) -> str | None:
        """The alert level this change crossed into going down, if it crossed one."""
        if self.before is None or self.removed or self.after.available >= self.before.available:
            return None
        old, new = self.before.alert_level, self.after.alert_level
        return new if SEVERITY[new] > SEVERITY[old] else None

    def ledger_values(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "kind": self.kind,
            "delta_on_hand": self.delta_on_hand,
            "delta_reserved": self.delta_reserved,
            "delta_available": self.delta_available,
            "on_hand_after": self.after.on_hand,
            "reserved_after": self.after.reserved,
            "available_after": self.after.available,
            "source_event_id": self.ledger_id or self.event_id,
            "reason": self.reason,
            "staff_user_id": self.staff_user_id,
            "created_at": self.occurred_at,
        }

    def alert_payload(self, level: str) -> dict[str, Any]:
        return {
            "alert_id": self.event_id,
            "product_id": self.product_id,
            "product_name": self.product_name,
            "level": level,
            "previous_level": self.before.alert_level if self.before else None,
            "available": self.after.available,
            "on_hand": self.after.on_hand,
            "reserved": self.after.reserved,
            "low_stock_threshold": self.after.low_stock_threshold,
            "critical_threshold": self.after.critical_threshold,
            "reorder_quantity": self.reorder_quantity,
            "occurred_at": self.occurred_at.isoformat(),
        }

    def live_payload(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "on_hand": self.after.on_hand,
            "reserved": self.after.reserved,
            "available": self.after.available,
            "stock_status": self.after.stock_status,
            "alert_level": self.after.alert_level,
        }


def ledger_kind(d_on_hand: int, d_reserved: int, d_available: int) -> str:
    if d_on_hand == 0 and d_reserved > 0 and d_available == -d_reserved:
        return "reserve"
    if d_available == 0 and d_reserved < 0 and d_on_hand == d_reserved:
        return "confirm"
    if d_on_hand == 0 and d_reserved < 0 and d_available == -d_reserved:
        return "release"
    if d_reserved == 0 and d_on_hand > 0 and d_available == d_on_hand:
        return "restock"
    if d_reserved == 0 and d_on_hand < 0 and d_available == d_on_hand:
        return "adjust"
    return "set"


def _image(image: dict[str, Any] | None) -> dict[str, Any] | None:
    if not image:
        return None
    return {key: from_attribute(value) for key, value in image.items()}


def _levels(item: dict[str, Any]) -> Levels:
    def number(name: str, default: int = 0) -> int:
        value = item.get(name)
        return int(value) if isinstance(value, int | float) else default

    return Levels(
        on_hand=number("on_hand"),
        reserved=number("reserved"),
        available=number("available"),
        low_stock_threshold=number("low_stock_threshold", 5),
        critical_threshold=number("critical_threshold", 2),
    )


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)


def stock_change(record: dict[str, Any]) -> StockChange | None:
    """The stock change a stream record describes, or ``None`` (a catalogue-only edit)."""
    data = record.get("dynamodb") or {}
    old, new = _image(data.get("OldImage")), _image(data.get("NewImage"))
    keys = _image(data.get("Keys")) or {}
    product_id = str((new or old or keys).get("id") or keys.get("id") or "")
    event_id = str(record.get("eventID") or data.get("SequenceNumber") or "")
    if not product_id or not event_id:
        return None
    before = _levels(old) if old else None
    if new is None:  # deleted: record that its stock is gone
        after = Levels(0, 0, 0, 0, 0)
        kind = "set"
    else:
        after = _levels(new)
        if before is not None and (before.on_hand, before.reserved, before.available) == (
            after.on_hand,
            after.reserved,
            after.available,
        ):
            return None
        kind = (
            "set"
            if before is None
            else ledger_kind(
                after.on_hand - before.on_hand,
                after.reserved - before.reserved,
                after.available - before.available,
            )
        )
    source = new or old or {}
    reorder = source.get("reorder_quantity")
    note = _change_note(old, new)
    return StockChange(
        event_id=event_id,
        product_id=product_id,
        product_name=str(source.get("name") or product_id),
        kind=kind,
        before=before,
        after=after,
        reorder_quantity=int(reorder) if isinstance(reorder, int) else None,
        occurred_at=_timestamp(data.get("ApproximateCreationDateTime")),
        removed=new is None,
        **note,
    )


def _change_note(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Ledger id, reason and author of a change made by hand (a new ``last_change_id``)."""
    change_id = (new or {}).get("last_change_id")
    if not change_id or change_id == (old or {}).get("last_change_id"):
        return {}
    staff = (new or {}).get("last_change_by")
    try:
        staff_user_id = uuid.UUID(str(staff)) if staff else None
    except ValueError:
        staff_user_id = None
    return {
        "ledger_id": ledger_change_id(str(change_id)),
        "reason": (new or {}).get("last_change_reason"),
        "staff_user_id": staff_user_id,
    }


def ledger_change_id(change_id: str) -> str:
    """The ledger's ``source_event_id`` of a change made by hand."""
    return f"change:{change_id}"
