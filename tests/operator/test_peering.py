"""Several operator replicas: kopf peering through the KopfPeering ``pickup`` (KMock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pickup.adapters.dynamodb import InventoryStore
from pickup.settings import Settings
from tests.operator.conftest import OperatorHarness, add_product, eventually, threshold


async def test_a_replica_announces_itself_in_the_peering_and_works(
    kube: OperatorHarness, store: InventoryStore, operator_settings: Settings
) -> None:
    kube.declare_peering()
    await add_product(store, available=40)
    kube.seed(threshold())

    async with kube.running(operator_settings, peering_priority=100):
        peers = await eventually(kube.peers, message="the operator in the peering")
        await eventually(lambda: kube.status().get("level") == "Ok", message="reconciled")

    [(identity, info)] = peers.items()
    assert identity and info["priority"] == 100 and info["lifetime"] > 0


async def test_a_replica_pauses_while_a_higher_priority_peer_is_alive(
    kube: OperatorHarness, store: InventoryStore, operator_settings: Settings
) -> None:
    now = datetime.now(UTC).isoformat()
    kube.declare_peering({"leader": {"priority": 500, "lifetime": 60, "lastseen": now}})
    await add_product(store, available=40)
    kube.seed(threshold())

    async with kube.running(operator_settings, peering_priority=100):
        await eventually(lambda: len(kube.peers()) == 2, message="both peers listed")
        await asyncio.sleep(3)  # several timer intervals: a paused replica does nothing
        assert kube.status() == {}

        # The leader goes away (its entry removed, as kopf does on a clean exit).
        response = await kube.kmock.patch(
            "/apis/kopf.dev/v1/namespaces/shop/kopfpeerings/pickup",
            json={"status": {"leader": None}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status == 200, await response.text()
        await eventually(lambda: kube.status().get("level") == "Ok", within=20, message="resumed")
