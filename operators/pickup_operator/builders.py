"""Pure decisions and builders of the InventoryThreshold operator: no I/O, no kopf.

Everything the handlers decide (which level the stock is at, whether the product needs its
thresholds written, whether a level change is alerted or falls inside the cooldown) and
everything they build (status, conditions, the SNS alert, the Event's message) is computed
here from plain values, so each rule has a parametrized unit test of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pickup.core.inventory import ProductWithInventory, is_product_id

ALERT_TYPE = "inventory.threshold_crossed"
ALERT_VERSION = 1

# A product that does not exist yet is looked for again this rarely: it is usually created
# later (a menu import, a GitOps repository applied before the seed), never within seconds.
PRODUCT_NOT_FOUND_DELAY = 300.0
CONFLICT_DELAY = 300.0
INVALID_SPEC_MESSAGE = "the spec cannot be applied: {}"

_PRODUCT_DEFAULTS = ProductWithInventory.model_fields


class Level(StrEnum):
    """The stock level shown in ``status.level`` (and the printer column)."""

    OK = "Ok"
    LOW = "Low"
    CRITICAL = "Critical"
    OUT_OF_STOCK = "OutOfStock"


class InvalidSpec(ValueError):
    """A spec the operator cannot apply (an old CRD without the validation, a hand edit)."""


@dataclass(frozen=True)
class ThresholdSpec:
    """The validated spec of one InventoryThreshold."""

    product_id: str
    low_stock: int
    critical: int
    reorder_quantity: int = 0
    cooldown_seconds: int = 3600
    notify: Mapping[str, Any] | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ThresholdSpec:
        """The spec as the CRD's schema and CEL rule describe it, or :class:`InvalidSpec`."""
        product_id = spec.get("productId")
        if not is_product_id(product_id):
            raise InvalidSpec(
                f"productId {product_id!r} is not a product id "
                "(1-64 lowercase letters, digits or '-')"
            )
        low = _non_negative_int(spec, "lowStock", required=True)
        critical = _non_negative_int(spec, "critical", required=True)
        if critical >= low:
            raise InvalidSpec(f"critical ({critical}) must be below lowStock ({low})")
        notify = spec.get("notify")
        return cls(
            product_id=str(product_id),
            low_stock=low,
            critical=critical,
            reorder_quantity=_non_negative_int(spec, "reorderQuantity", default=0),
            cooldown_seconds=_non_negative_int(spec, "cooldownSeconds", default=3600),
            notify=dict(notify) if isinstance(notify, Mapping) else {},
        )


def _non_negative_int(
    spec: Mapping[str, Any], key: str, *, required: bool = False, default: int = 0
) -> int:
    value = spec.get(key)
    if value is None:
        if required:
            raise InvalidSpec(f"{key} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSpec(f"{key} must be a non-negative integer, got {value!r}")
    return value


def resource_ref(namespace: str | None, name: str) -> str:
    """What ``managed_by`` holds: ``<namespace>/<name>`` of the resource."""
    return f"{namespace}/{name}" if namespace else name


def level_for(available: int, low_stock: int, critical: int) -> Level:
    """The level of ``available`` units against the thresholds (both inclusive)."""
    if available <= 0:
        return Level.OUT_OF_STOCK
    if available <= critical:
        return Level.CRITICAL
    if available <= low_stock:
        return Level.LOW
    return Level.OK


def parse_level(value: object) -> Level | None:
    try:
        return Level(str(value)) if value is not None else None
    except ValueError:
        return None


# --- Syncing the product ------------------------------------------------------------------


def thresholds_applied(product: ProductWithInventory, spec: ThresholdSpec, ref: str) -> bool:
    """Whether the product already carries this spec's thresholds and names ``ref``."""
    return (
        product.low_stock_threshold == spec.low_stock
        and product.critical_threshold == spec.critical
        and product.reorder_quantity == spec.reorder_quantity
        and product.managed_by == ref
    )


def managed_by_another(product: ProductWithInventory, ref: str) -> str | None:
    """The other resource that manages the product, if it is not ``ref`` (nor nobody)."""
    return product.managed_by if product.managed_by not in (None, ref) else None


@dataclass(frozen=True)
class ReleasedThresholds:
    """What a product goes back to when its resource is deleted: the catalogue defaults."""

    low: int
    critical: int
    reorder_quantity: None = None
    managed_by: None = None


def released_thresholds() -> ReleasedThresholds:
    return ReleasedThresholds(
        low=int(_PRODUCT_DEFAULTS["low_stock_threshold"].default),
        critical=int(_PRODUCT_DEFAULTS["critical_threshold"].default),
    )


def retry_delay(retry: int, *, base: float = 2.0, cap: float = 120.0) -> float:
    """The backoff before attempt ``retry + 1`` after a transient failure (kopf's ``retry``)."""
    return float(min(cap, base * 2 ** max(0, retry)))


# --- Alerts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertDecision:
    """What one observation of the stock leads to."""

    changed: bool  # post a Kubernetes Event
    publish: bool  # publish the SNS alert
    reason: str  # why (for the Event's message and the logs)
    cooldown_until: datetime | None = None


def decide_alert(
    previous: Level | None,
    current: Level,
    last_alerts: Mapping[Level, datetime],
    now: datetime,
    cooldown_seconds: int,
) -> AlertDecision:
    """Whether a level change is posted as an Event and alerted over SNS.

    A first observation (``previous`` is None) at ``Ok`` is no change; at any other level it
    is, so a resource created on stock that is already low alerts once. Only moves to a level
    below ``Ok`` are alerted, and at most once per level within ``cooldown_seconds`` (stock
    flapping across a threshold raises one alert, not one per flap); a recovery to ``Ok`` is
    an Event only.
    """
    if previous == current or (previous is None and current is Level.OK):
        return AlertDecision(changed=False, publish=False, reason="unchanged")
    if current is Level.OK:
        return AlertDecision(changed=True, publish=False, reason="recovered")
    last = last_alerts.get(current)
    if last is not None:
        until = last + timedelta(seconds=cooldown_seconds)
        if now < until:
            return AlertDecision(
                changed=True, publish=False, reason="cooldown", cooldown_until=until
            )
    return AlertDecision(changed=True, publish=True, reason="alert")


def parse_alert_times(raw: object) -> dict[Level, datetime]:
    """``status.lastAlerts`` (level -> RFC 3339 time) as a dict; junk entries are dropped."""
    times: dict[Level, datetime] = {}
    if not isinstance(raw, Mapping):
        return times
    for key, value in raw.items():
        level = parse_level(key)
        if level is None or not isinstance(value, str):
            continue
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            continue
        times[level] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return times


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def alert_id(uid: str, level: Level, occurred_at: datetime) -> str:
    """A stable id of one alert, so the notifier can deduplicate a redelivered message."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pickup:ithr:{uid}:{level}:{rfc3339(occurred_at)}"))


def build_alert(
    *,
    product: ProductWithInventory,
    spec: ThresholdSpec,
    ref: str,
    uid: str,
    level: Level,
    previous: Level | None,
    occurred_at: datetime,
) -> dict[str, Any]:
    """The SNS message the notifier consumes (``type`` inventory.threshold_crossed, v1)."""
    return {
        "type": ALERT_TYPE,
        "version": ALERT_VERSION,
        "alert_id": alert_id(uid, level, occurred_at),
        "product_id": product.id,
        "product_name": product.name,
        "level": str(level),
        "previous_level": str(previous) if previous is not None else None,
        "available": product.available,
        "reserved": product.reserved,
        "on_hand": product.on_hand,
        "low_stock_threshold": spec.low_stock,
        "critical_threshold": spec.critical,
        "reorder_quantity": spec.reorder_quantity,
        "resource": ref,
        "notify": dict(spec.notify or {}),
        "occurred_at": rfc3339(occurred_at),
    }


def alert_attributes() -> dict[str, dict[str, str]]:
    return {"event_type": {"DataType": "String", "StringValue": ALERT_TYPE}}


def event_message(
    product: ProductWithInventory,
    spec: ThresholdSpec,
    previous: Level | None,
    decision: AlertDecision,
    current: Level,
) -> tuple[str, str]:
    """The Event's type (Normal/Warning) and message for a level change."""
    start = str(previous) if previous is not None else "unknown"
    message = (
        f"{product.id}: {start} -> {current} ({product.available} available; "
        f"low {spec.low_stock}, critical {spec.critical})"
    )
    if decision.reason == "alert":
        message += "; alert sent"
    elif decision.reason == "cooldown" and decision.cooldown_until is not None:
        message += f"; alert suppressed until {rfc3339(decision.cooldown_until)} (cooldown)"
    kind = "Normal" if current is Level.OK else "Warning"
    return kind, message


# --- Status --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str

    @property
    def status_text(self) -> str:
        return "Unknown" if self.status is None else ("True" if self.status else "False")


def merge_conditions(
    existing: Iterable[Mapping[str, Any]] | None,
    updates: Iterable[Condition],
    *,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """The conditions after ``updates``; ``lastTransitionTime`` moves only when status does."""
    by_type: dict[str, dict[str, Any]] = {}
    for condition in existing or ():
        if isinstance(condition, Mapping) and condition.get("type"):
            by_type[str(condition["type"])] = dict(condition)
    for update in updates:
        old = by_type.get(update.type, {})
        transitioned = old.get("status") != update.status_text
        entry: dict[str, Any] = {
            "type": update.type,
            "status": update.status_text,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": (
                rfc3339(now)
                if transitioned or not old.get("lastTransitionTime")
                else old["lastTransitionTime"]
            ),
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        by_type[update.type] = entry
    return [by_type[key] for key in sorted(by_type)]


def synced_conditions(product: ProductWithInventory, level: Level) -> list[Condition]:
    return [
        Condition(
            "Synced",
            True,
            "ThresholdsApplied",
            f"thresholds written to product {product.id}",
        ),
        Condition(
            "Ready",
            True,
            "Monitoring",
            f"{product.available} available, {product.reserved} reserved: {level}",
        ),
    ]


def failed_conditions(reason: str, message: str) -> list[Condition]:
    """Both conditions false for one cause (ProductNotFound, ManagedByAnotherResource, ...)."""
    return [Condition("Synced", False, reason, message), Condition("Ready", False, reason, message)]


def unavailable_conditions(message: str) -> list[Condition]:
    """AWS unreachable: what was synced stays synced, but the stock is not being watched."""
    return [Condition("Ready", False, "AWSUnavailable", message)]


def stock_status(
    product: ProductWithInventory,
    level: Level,
    *,
    generation: int | None,
) -> dict[str, Any]:
    """The stock fields of ``status`` after a successful observation."""
    status: dict[str, Any] = {
        "productName": product.name,
        "available": product.available,
        "reserved": product.reserved,
        "onHand": product.on_hand,
        "level": str(level),
    }
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def alert_status(
    last_alerts: Mapping[Level, datetime], level: Level, at: datetime
) -> dict[str, Any]:
    """``lastAlertTime``, ``lastAlertLevel`` and the per-level times the cooldown reads."""
    times = {**last_alerts, level: at}
    return {
        "lastAlertTime": rfc3339(at),
        "lastAlertLevel": str(level),
        "lastAlerts": {str(key): rfc3339(value) for key, value in sorted(times.items())},
    }
