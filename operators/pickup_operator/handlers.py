"""The orchestration of the InventoryThreshold operator: read, decide (builders), write.

Each handler reads the product from DynamoDB, asks :mod:`pickup_operator.builders` what to do
and does it: writes the thresholds, publishes an alert, posts an Event, patches the status.
Failures say how they should be retried: a transient AWS error is a ``TemporaryError`` with a
backoff, a missing product a ``TemporaryError`` with a long delay (never a crash loop), a spec
that cannot be applied a ``PermanentError``. No handler sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from pickup.adapters.aws import AWSClients
from pickup.adapters.dynamodb import InventoryStore
from pickup.adapters.redis import create_redis
from pickup.core.errors import ServiceUnavailable
from pickup.core.inventory import ProductWithInventory, UnknownProduct, is_product_id
from pickup.settings import Settings, load_settings
from pickup_operator import builders
from pickup_operator.alerts import AlertPublisher, AlertUnsent
from pickup_operator.builders import Condition, Level, ThresholdSpec
from pickup_operator.stock_events import StockEventListener

FINALIZER = "pickup.dev/inventory-threshold"
EVENT_REASON = "LevelChanged"

logger = logging.getLogger("pickup.operator")


@dataclass
class Observed:
    """What this process last saw of one resource: its level and when each level alerted."""

    level: Level | None
    last_alerts: dict[Level, datetime]

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Observed:
        return cls(
            level=builders.parse_level(status.get("level")),
            last_alerts=builders.parse_alert_times(status.get("lastAlerts")),
        )


@dataclass
class OperatorContext:
    """The clients and in-process state the handlers share (built by :func:`start`).

    ``observed`` survives between handler calls, so two handlers of one resource (the timer
    and an update) never both alert one level change; the status is its copy that survives a
    restart. ``locks`` serialise the handlers of one resource.
    """

    settings: Settings
    inventory: InventoryStore
    alerts: AlertPublisher
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    observed: dict[str, Observed] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)
    changed_products: set[str] = field(default_factory=set)
    last_checked: dict[str, float] = field(default_factory=dict)
    monotonic: Callable[[], float] = time.monotonic

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def stock_changed(self, product_id: str) -> None:
        """A stock event named ``product_id``: its resource checks it at its next tick."""
        self.changed_products.add(product_id)

    def check_due(self, uid: str, product_id: object) -> bool:
        """Whether the check timer of ``uid`` should read its product now, and if so note it.

        Due when the product changed since (a stock event), when the full interval has passed,
        or on the first tick.
        """
        now = self.monotonic()
        last = self.last_checked.get(uid)
        changed = product_id in self.changed_products
        interval = self.settings.operator_reconcile_interval_seconds
        if not changed and last is not None and now - last < interval:
            return False
        self.changed_products.discard(product_id)  # type: ignore[arg-type]
        self.last_checked[uid] = now
        return True

    def checked(self, uid: str) -> None:
        """A handler read the product of ``uid``: its next full check is an interval away."""
        self.last_checked[uid] = self.monotonic()

    def forget(self, uid: str) -> None:
        self.observed.pop(uid, None)
        self.last_checked.pop(uid, None)
        self.released.add(uid)


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    """kopf's behaviour for this operator (also under a plain ``kopf run``)."""
    settings.persistence.finalizer = FINALIZER
    # Handler chatter stays in the logs; Events are the level changes and real problems.
    settings.posting.level = logging.WARNING


# --- Start-up and shutdown --------------------------------------------------------------------


async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Load the settings (unless given), open the AWS clients, configure kopf."""
    configure_kopf(settings)
    config: Settings = memo.get("settings") or load_settings()
    stack = AsyncExitStack()
    aws = await stack.enter_async_context(AWSClients(config))
    memo["stack"] = stack
    context = OperatorContext(
        settings=config,
        inventory=InventoryStore(aws, config.names.products_table),
        alerts=AlertPublisher(aws, config.names.inventory_alerts_topic),
        clock=memo.get("clock") or (lambda: datetime.now(UTC)),
    )
    memo["context"] = context
    redis = create_redis(config)
    stack.push_async_callback(redis.aclose)
    listener = asyncio.create_task(
        StockEventListener(redis, context.stock_changed).run(), name="stock-events"
    )
    stack.push_async_callback(_cancel, listener)
    logger.info(
        "operator.started table=%s topic=%s interval=%ss",
        config.names.products_table,
        config.names.inventory_alerts_topic,
        config.operator_reconcile_interval_seconds,
    )


async def stop(memo: kopf.Memo, **_: Any) -> None:
    stack: AsyncExitStack | None = memo.get("stack")
    if stack is not None:
        await stack.aclose()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _context(memo: kopf.Memo) -> OperatorContext:
    context = memo.get("context")
    if not isinstance(context, OperatorContext):  # pragma: no cover - start() always ran
        raise kopf.TemporaryError("the operator has not started yet", delay=5)
    return context


# --- Reconciliation ---------------------------------------------------------------------------


async def sync(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    uid: str,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Create and resume: write the thresholds to the product, then observe its stock."""
    await _reconcile(
        _context(memo), body, spec, meta, status, uid, name, namespace, patch, retry, logger
    )


async def resync(
    body: kopf.Body,
    old: Any,
    new: Any,
    meta: kopf.Meta,
    status: kopf.Status,
    uid: str,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """The spec changed: let go of a product no longer named (the CRD forbids it), re-sync."""
    context = _context(memo)
    old_product = (old or {}).get("productId")
    if old_product and old_product != (new or {}).get("productId"):
        await _release_product(context, old_product, builders.resource_ref(namespace, name), retry)
        context.observed.pop(uid, None)
    await _reconcile(
        context, body, new or {}, meta, status, uid, name, namespace, patch, retry, logger
    )


async def check_stock(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    uid: str,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """The timer: re-apply drifted thresholds, read the stock, alert on a level change.

    It ticks every ``operator_event_check_seconds`` but reads the product only when a stock
    event named it or the full ``operator_reconcile_interval_seconds`` has passed.
    """
    if meta.get("deletionTimestamp"):
        return
    context = _context(memo)
    if not context.check_due(uid, spec.get("productId")):
        return
    await _reconcile(
        context,
        body,
        spec,
        meta,
        status,
        uid,
        name,
        namespace,
        patch,
        retry,
        logger,
        from_timer=True,
    )


async def release(
    spec: kopf.Spec,
    uid: str,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    retry: int,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """The finalizer: give the product back its default thresholds and no manager."""
    context = _context(memo)
    product_id = spec.get("productId")
    ref = builders.resource_ref(namespace, name)
    async with context.lock(uid):
        if is_product_id(product_id):
            released = await _release_product(context, str(product_id), ref, retry)
            logger.info(
                "operator.released product_id=%s resource=%s released=%s",
                product_id,
                ref,
                released,
            )
        context.forget(uid)


async def _release_product(context: OperatorContext, product_id: str, ref: str, retry: int) -> bool:
    """Clear the thresholds of ``product_id`` if ``ref`` manages it; whether it did."""
    defaults = builders.released_thresholds()
    try:
        product = await context.inventory.get_product(product_id, consistent_read=True)
        if product is None or product.managed_by != ref:
            return False
        await context.inventory.set_thresholds(
            product_id,
            defaults.low,
            defaults.critical,
            reorder_quantity=defaults.reorder_quantity,
            managed_by=defaults.managed_by,
        )
    except UnknownProduct:
        return False
    except ServiceUnavailable as error:
        raise kopf.TemporaryError(str(error), delay=builders.retry_delay(retry)) from error
    return True


async def _reconcile(
    context: OperatorContext,
    body: kopf.Body,
    spec: Mapping[str, Any],
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    uid: str,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    retry: int,
    log: logging.Logger | logging.LoggerAdapter[Any],
    *,
    from_timer: bool = False,
) -> None:
    ref = builders.resource_ref(namespace, name)
    generation = meta.get("generation")
    now = context.clock()

    def conditions(updates: list[Condition]) -> None:
        patch.status["conditions"] = builders.merge_conditions(
            status.get("conditions"), updates, now=now, generation=generation
        )

    try:
        threshold = ThresholdSpec.from_spec(spec)
    except builders.InvalidSpec as error:
        conditions(builders.failed_conditions("InvalidSpec", str(error)))
        if from_timer:
            return
        raise kopf.PermanentError(builders.INVALID_SPEC_MESSAGE.format(error)) from error

    async with context.lock(uid):
        if uid in context.released:
            return
        try:
            product = await context.inventory.get_product(
                threshold.product_id, consistent_read=True
            )
            if product is None:
                raise UnknownProduct([threshold.product_id])
            other = builders.managed_by_another(product, ref)
            if other is not None:
                message = (
                    f"product {product.id} is managed by {other}; delete that resource "
                    "(or clear its managed_by) first"
                )
                conditions(builders.failed_conditions("ManagedByAnotherResource", message))
                if from_timer:
                    return
                raise kopf.TemporaryError(message, delay=builders.CONFLICT_DELAY)
            if not builders.thresholds_applied(product, threshold, ref):
                product = await context.inventory.set_thresholds(
                    product.id,
                    threshold.low_stock,
                    threshold.critical,
                    reorder_quantity=threshold.reorder_quantity,
                    managed_by=ref,
                )
                log.info(
                    "operator.thresholds_applied product_id=%s low=%s critical=%s",
                    product.id,
                    threshold.low_stock,
                    threshold.critical,
                )
        except UnknownProduct:
            message = (
                f"product {threshold.product_id} does not exist in "
                f"{context.inventory.table_name}; looking again in "
                f"{int(builders.PRODUCT_NOT_FOUND_DELAY)}s"
            )
            conditions(builders.failed_conditions("ProductNotFound", message))
            if from_timer:
                return
            raise kopf.TemporaryError(message, delay=builders.PRODUCT_NOT_FOUND_DELAY) from None
        except ServiceUnavailable as error:
            conditions(builders.unavailable_conditions(str(error)))
            raise kopf.TemporaryError(str(error), delay=builders.retry_delay(retry)) from error

        level = await _observe(
            context, body, product, threshold, status, uid, ref, patch, retry, log, now, generation
        )
        context.checked(uid)
        conditions(builders.synced_conditions(product, level))


async def _observe(
    context: OperatorContext,
    body: kopf.Body,
    product: ProductWithInventory,
    threshold: ThresholdSpec,
    status: Mapping[str, Any],
    uid: str,
    ref: str,
    patch: kopf.Patch,
    retry: int,
    log: logging.Logger | logging.LoggerAdapter[Any],
    now: datetime,
    generation: int | None,
) -> Level:
    """Set the stock status; on a level change post an Event and (cooldown allowing) alert."""
    level = builders.level_for(product.available, threshold.low_stock, threshold.critical)
    seen = context.observed.get(uid) or Observed.from_status(status)
    decision = builders.decide_alert(
        seen.level, level, seen.last_alerts, now, threshold.cooldown_seconds
    )
    last_alerts = dict(seen.last_alerts)
    if decision.publish:
        message = builders.build_alert(
            product=product,
            spec=threshold,
            ref=ref,
            uid=uid,
            level=level,
            previous=seen.level,
            occurred_at=now,
        )
        try:
            await context.alerts.publish(message, builders.alert_attributes())
        except AlertUnsent as error:
            # Not recorded: the next attempt sees the same level change and alerts then.
            patch.status["conditions"] = builders.merge_conditions(
                status.get("conditions"),
                [Condition("Ready", False, "AlertUnsent", str(error))],
                now=now,
                generation=generation,
            )
            delay = builders.CONFLICT_DELAY if error.missing_topic else builders.retry_delay(retry)
            raise kopf.TemporaryError(str(error), delay=delay) from error
        patch.status.update(builders.alert_status(seen.last_alerts, level, now))
        last_alerts[level] = now
        log.info(
            "operator.alert_published product_id=%s level=%s previous=%s alert_id=%s",
            product.id,
            level,
            seen.level,
            message["alert_id"],
        )
    if decision.changed:
        kind, text = builders.event_message(product, threshold, seen.level, decision, level)
        kopf.event(body, type=kind, reason=EVENT_REASON, message=text)
    context.observed[uid] = Observed(level=level, last_alerts=last_alerts)
    patch.status.update(builders.stock_status(product, level, generation=generation))
    return level
