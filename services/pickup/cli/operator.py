"""The command of the inventory operator."""

from __future__ import annotations

import asyncio
import contextlib
import os

import click

from pickup.cli.common import configure_logging, load_or_exit


def watched_namespace(option: str | None, setting: str | None, pod_namespace: str | None) -> str:
    """The namespace to watch: the option, else the setting, else the pod's own namespace.

    The chart grants the operator a Role in its release namespace only, and passes that as
    ``POD_NAMESPACE``; outside a cluster (neither set) the operator watches every namespace
    (an empty string).
    """
    return option or setting or pod_namespace or ""


@click.command("operator")
@click.option(
    "--liveness",
    "liveness_endpoint",
    default=None,
    help="kopf's liveness endpoint (default: http://0.0.0.0:<PICKUP_OPERATOR_LIVENESS_PORT>/healthz).",
)
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="Namespace to watch (default: PICKUP_OPERATOR_NAMESPACE, else POD_NAMESPACE, else all).",
)
@click.option(
    "--peering",
    "peering_name",
    default="pickup",
    show_default=True,
    help="KopfPeering object shared by the replicas (used when it exists).",
)
@click.option(
    "--priority",
    type=click.IntRange(1),
    default=None,
    help="Peering priority (default: random, so two replicas never tie and both pause).",
)
@click.option(
    "--standalone",
    is_flag=True,
    help="Run without peering: one replica only (tests, development).",
)
def operator(
    liveness_endpoint: str | None,
    namespace: str | None,
    peering_name: str,
    priority: int | None,
    standalone: bool,
) -> None:
    """Reconcile InventoryThreshold resources (kopf): thresholds, stock status, alerts."""
    from pickup_operator.main import operate

    settings = load_or_exit()
    configure_logging(settings)
    watched = watched_namespace(
        namespace, settings.operator_namespace, os.environ.get("POD_NAMESPACE")
    )
    liveness = liveness_endpoint or f"http://0.0.0.0:{settings.operator_liveness_port}/healthz"
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            operate(
                settings,
                namespaces=[watched] if watched else [],
                liveness_endpoint=liveness,
                standalone=standalone,
                peering_name=peering_name,
                priority=priority,
            )
        )


COMMANDS: list[click.Command] = [operator]
