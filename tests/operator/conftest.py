"""The operator against a KMock Kubernetes API and the AWS emulator (moto over HTTP).

Each test gets settings with a resource prefix of its own, a products table, the
inventory-alerts topic with an SQS queue subscribed to it (so the alerts can be counted), and
a KMock API serving the InventoryThreshold resource. :class:`OperatorHarness` starts the real
operator (``pickup_operator.main.operate``) in the test's event loop and always stops it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import kmock as kmocklib
import kopf
import pytest

from pickup.adapters.aws import AWSClients
from pickup.adapters.dynamodb import InventoryStore, products_table_definition
from pickup.core.inventory import ProductWithInventory
from pickup.settings import Settings
from pickup_operator.main import (
    GROUP,
    PEERING_NAME,
    PLURAL,
    VERSION,
    build_registry,
    operate,
)
from tests.conftest import delete_aws_resources, load_settings_for
from tests.services import Services

RESOURCE = f"{GROUP}/{VERSION}/{PLURAL}"
EVENTS = "v1/events"
PEERINGS = "kopf.dev/v1/kopfpeerings"
NAMESPACE = "shop"
BASE_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"


async def eventually(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    *,
    within: float = 10.0,
    message: str = "condition",
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{message} not reached within {within}s (last: {last!r})")


@pytest.fixture
def operator_settings(services: Services) -> Iterator[Settings]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    # The operator never connects to PostgreSQL, but the settings require a URL.
    yield load_settings_for(
        services,
        database_url=services.database_url,
        resource_prefix=prefix,
        operator_reconcile_interval_seconds=1,
    )
    delete_aws_resources(services.aws_endpoint, prefix)


class AlertInbox:
    """An SQS queue subscribed (raw delivery) to the inventory-alerts topic."""

    def __init__(self, sqs: Any, url: str) -> None:
        self._sqs = sqs
        self.url = url
        self.received: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def drain(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every alert received so far (body, attributes), in arrival order."""
        while True:
            response = await self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                return self.received
            for message in messages:
                self.received.append(
                    (json.loads(message["Body"]), message.get("MessageAttributes", {}))
                )
                await self._sqs.delete_message(
                    QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
async def aws_world(operator_settings: Settings) -> AsyncIterator[dict[str, Any]]:
    names = operator_settings.names
    async with AWSClients(operator_settings) as clients:
        dynamodb = await clients.client("dynamodb")
        await dynamodb.create_table(**products_table_definition(names.products_table))
        sns = await clients.client("sns")
        topic = await sns.create_topic(Name=names.inventory_alerts_topic)
        sqs = await clients.client("sqs")
        queue = await sqs.create_queue(QueueName=f"{names.prefix}-alerts-inbox")
        queue_arn = (
            await sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])
        )["Attributes"]["QueueArn"]
        await sns.subscribe(
            TopicArn=topic["TopicArn"],
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        yield {
            "store": InventoryStore(clients, names.products_table),
            "inbox": AlertInbox(sqs, queue["QueueUrl"]),
        }


@pytest.fixture
def store(aws_world: dict[str, Any]) -> InventoryStore:
    return aws_world["store"]


@pytest.fixture
def inbox(aws_world: dict[str, Any]) -> AlertInbox:
    return aws_world["inbox"]


async def add_product(
    store: InventoryStore, product_id: str = "croissant", available: int = 40, **extra: Any
) -> ProductWithInventory:
    return await store.put_product(
        ProductWithInventory(
            id=product_id,
            name=product_id.capitalize(),
            price_cents=250,
            **{"on_hand": available, "available": available, **extra},
        ),
        replace_inventory=True,
    )


def threshold(name: str = "croissant", generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InventoryThreshold",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}-{uuid.uuid4().hex[:6]}",
            "generation": generation,
            # kopf guards its finalizer patches with a test of the resourceVersion.
            "resourceVersion": "1",
        },
        "spec": {
            "productId": "croissant",
            "lowStock": 10,
            "critical": 3,
            "reorderQuantity": 48,
            "cooldownSeconds": 3600,
            "notify": {"emails": ["kitchen@example.com"]},
            **spec,
        },
    }


class OperatorHarness:
    """The KMock API as the operator sees it, and helpers to read what it did there."""

    def __init__(self, kmock: Any) -> None:
        self.kmock = kmock

    def declare(self) -> None:
        k = self.kmock
        k.resources["v1/namespaces"] = kmocklib.ResourceInfo(
            kind="Namespace", namespaced=False, verbs={"list", "watch", "get"}
        )
        k.resources[EVENTS] = kmocklib.ResourceInfo(
            kind="Event", namespaced=True, verbs={"create", "list", "get"}
        )
        k.resources[RESOURCE] = kmocklib.ResourceInfo(
            kind="InventoryThreshold",
            singular="inventorythreshold",
            namespaced=True,
            verbs={"list", "watch", "get", "patch", "create", "delete", "update"},
            subresources={"status"},
        )

    def declare_peering(self, peers: dict[str, dict[str, Any]] | None = None) -> None:
        """The KopfPeering CRD (kopf's own) and the ``pickup`` peering object with ``peers``."""
        self.kmock.resources[PEERINGS] = kmocklib.ResourceInfo(
            kind="KopfPeering",
            singular="kopfpeering",
            namespaced=True,
            verbs={"list", "watch", "get", "patch", "create", "delete", "update"},
        )
        self.kmock.objects[PEERINGS, NAMESPACE, PEERING_NAME] = {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": PEERING_NAME, "namespace": NAMESPACE},
            "status": peers or {},
        }

    def peers(self) -> dict[str, Any]:
        return dict(self.kmock.objects[PEERINGS, NAMESPACE, PEERING_NAME].get("status") or {})

    def seed(self, body: dict[str, Any]) -> None:
        self.kmock.objects[RESOURCE, NAMESPACE, body["metadata"]["name"]] = body

    def obj(self, name: str = "croissant") -> dict[str, Any]:
        return dict(self.kmock.objects[RESOURCE, NAMESPACE, name])

    def status(self, name: str = "croissant") -> dict[str, Any]:
        return dict(self.obj(name).get("status") or {})

    def condition(self, type_: str, name: str = "croissant") -> dict[str, Any]:
        for condition in self.status(name).get("conditions") or []:
            if condition.get("type") == type_:
                return dict(condition)
        return {}

    def exists(self, name: str = "croissant") -> bool:
        try:
            return not self.kmock.objects[RESOURCE, NAMESPACE, name].deleted
        except KeyError:
            return False

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        found = []
        for request in list(self.kmock):  # every request KMock served, in order
            if str(request.method).upper().endswith("POST") and request.url.path.endswith(
                "/events"
            ):
                data = request.data or {}
                if reason is None or data.get("reason") == reason:
                    found.append(data)
        return found

    async def create(self, body: dict[str, Any]) -> None:
        response = await self.kmock.post(BASE_PATH, json=body)
        assert response.status == 200, await response.text()

    async def patch(self, name: str, body: dict[str, Any]) -> None:
        response = await self.kmock.patch(
            f"{BASE_PATH}/{name}",
            json=body,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status == 200, await response.text()

    async def delete(self, name: str) -> None:
        response = await self.kmock.delete(f"{BASE_PATH}/{name}")
        assert response.status == 200, await response.text()

    @asynccontextmanager
    async def running(
        self,
        settings: Settings,
        *,
        start_timeout: float = 10.0,
        peering_priority: int | None = None,
    ) -> AsyncIterator[None]:
        """The operator watching NAMESPACE, standalone unless given a peering priority (it
        then takes part in the KopfPeering ``pickup``); stopped cleanly on exit.

        It runs in a thread with an event loop of its own, as ``kopf run`` would in a
        process: at exit kopf waits (up to 5 s) for every task of its loop, and KMock's
        server-side watch streams would otherwise be among them.
        """
        registry = build_registry(settings)
        url = str(self.kmock.url).rstrip("/")

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=url, insecure=True)

        kopf_settings = kopf.OperatorSettings()
        kopf_settings.scanning.disabled = True
        kopf_settings.watching.server_timeout = 1
        kopf_settings.watching.client_timeout = 3
        kopf_settings.watching.connect_timeout = 2
        # Workers waiting out a TemporaryError's delay are cancelled this soon at exit.
        kopf_settings.queueing.exit_timeout = 0.5
        stop, ready = threading.Event(), threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(
                    operate(
                        settings,
                        namespaces=[NAMESPACE],
                        standalone=peering_priority is None,
                        priority=peering_priority,
                        registry=registry,
                        kopf_settings=kopf_settings,
                        stop_flag=stop,
                        ready_flag=ready,
                    )
                )
            except BaseException as error:  # reported by the test, not lost in the thread
                failures.append(error)

        thread = threading.Thread(target=run, name="operator", daemon=True)
        thread.start()
        try:
            await eventually(ready.is_set, within=start_timeout, message="operator ready")
            yield
            assert thread.is_alive() and not failures, f"the operator stopped: {failures}"
        finally:
            stop.set()
            await asyncio.to_thread(thread.join, 15)
        assert not thread.is_alive(), "the operator did not stop within 15 s"
        assert not failures, f"the operator failed: {failures!r}"


@pytest.fixture
def kube(kmock: Any) -> OperatorHarness:
    harness = OperatorHarness(kmock)
    harness.declare()
    return harness
