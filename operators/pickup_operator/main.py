"""The InventoryThreshold operator's composition root: handler registration and the run.

``pickup operator`` calls :func:`operate`; ``kopf run -m pickup_operator.kopf_entry`` uses
kopf's default registry, filled by the same :func:`register`.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Collection
from typing import Any

import kopf

from pickup.settings import Settings
from pickup_operator import handlers

GROUP = "pickup.dev"
VERSION = "v1alpha1"
PLURAL = "inventorythresholds"
RESOURCE = (GROUP, VERSION, PLURAL)
PEERING_NAME = "pickup"


def register(
    registry: kopf.OperatorRegistry, *, reconcile_interval: float, event_check_interval: float
) -> None:
    """Register every handler of the operator on ``registry``.

    The stock timer ticks every ``event_check_interval`` (at most ``reconcile_interval``); each
    tick reads the product only when it is due (see ``OperatorContext.check_due``).
    """
    kopf.on.startup(registry=registry, id="start")(handlers.start)
    kopf.on.cleanup(registry=registry, id="stop")(handlers.stop)
    kopf.on.create(*RESOURCE, registry=registry, id="sync")(handlers.sync)
    kopf.on.resume(*RESOURCE, registry=registry, id="sync")(handlers.sync)
    kopf.on.update(*RESOURCE, registry=registry, id="resync", field="spec")(handlers.resync)
    kopf.on.delete(*RESOURCE, registry=registry, id="release")(handlers.release)
    kopf.timer(
        *RESOURCE,
        registry=registry,
        id="check-stock",
        interval=min(event_check_interval, reconcile_interval),
        initial_delay=min(5.0, reconcile_interval),
    )(handlers.check_stock)


def build_registry(settings: Settings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    register(
        registry,
        reconcile_interval=settings.operator_reconcile_interval_seconds,
        event_check_interval=settings.operator_event_check_seconds,
    )
    return registry


def peering_priority() -> int:
    """A random priority per process: kopf pauses *every* peer that shares one."""
    return 1 + secrets.randbelow(1_000_000)


async def operate(
    settings: Settings,
    *,
    namespaces: Collection[str] = (),
    liveness_endpoint: str | None = None,
    standalone: bool = False,
    peering_name: str = PEERING_NAME,
    priority: int | None = None,
    registry: kopf.OperatorRegistry | None = None,
    kopf_settings: kopf.OperatorSettings | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    memo: dict[str, Any] | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or a signal stops it).

    No ``namespaces`` watches the whole cluster. Unless ``standalone``, the replicas pause for
    one another through the KopfPeering ``peering_name`` when it exists (kopf falls back to
    standalone with a warning when it does not).
    """
    await kopf.operator(
        registry=registry or build_registry(settings),
        settings=kopf_settings or kopf.OperatorSettings(),
        memo=kopf.Memo(settings=settings, **(memo or {})),
        namespaces=list(namespaces),
        clusterwide=not namespaces,
        standalone=standalone,
        peering_name=None if standalone else peering_name,
        priority=None if standalone else (priority or peering_priority()),
        liveness_endpoint=liveness_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
