"""InventoryStore against the DynamoDB API of the moto server: a fresh table per test."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from pickup.adapters.aws import AWSClients
from pickup.adapters.dynamodb import (
    InventoryStore,
    client_request_token,
    products_table_definition,
)
from pickup.core.errors import InvalidInput, PickupError, ServiceUnavailable
from pickup.core.inventory import (
    KEEP,
    InsufficientStock,
    InventoryUpdate,
    Mismatch,
    ProductWithInventory,
    ReservationMismatch,
    Shortfall,
    StockLevels,
    StockLine,
    UnknownProduct,
    merge_lines,
)
from pickup.settings import Settings

T = TypeVar("T")

# The store needs no PostgreSQL: naming a database here keeps the suite's migrated session
# database (and its start-up cost) out of these tests.
NO_DATABASE = "postgresql://unused@127.0.0.1:1/unused"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(database_url=NO_DATABASE)


async def create_table(clients: AWSClients, name: str) -> None:
    dynamodb = await clients.client("dynamodb")
    await dynamodb.create_table(**products_table_definition(name))
    await dynamodb.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


async def drop_table(clients: AWSClients, name: str) -> None:
    dynamodb = await clients.client("dynamodb")
    await dynamodb.delete_table(TableName=name)


@pytest.fixture
async def store(aws: AWSClients, settings: Settings) -> AsyncIterator[InventoryStore]:
    name = settings.names.products_table
    await create_table(aws, name)
    yield InventoryStore(aws, name)
    await drop_table(aws, name)


def product(product_id: str, stock: int = 10, **overrides: Any) -> ProductWithInventory:
    values: dict[str, Any] = {
        "id": product_id,
        "name": product_id.replace("-", " ").title(),
        "description": "Baked this morning",
        "category": "Pastries",
        "price_cents": 275,
        "allergens": ["gluten", "milk"],
        "image": "/static/img/products/croissant.webp",
        "on_hand": stock,
        "available": stock,
        "reserved": 0,
    }
    values.update(overrides)
    return ProductWithInventory(**values)


async def seed(store: InventoryStore, **stock: int) -> None:
    for product_id, on_hand in stock.items():
        await store.put_product(product(product_id, on_hand), replace_inventory=True)


async def levels(store: InventoryStore, product_id: str) -> StockLevels:
    found = await store.get_product(product_id, consistent_read=True)
    assert found is not None
    return found.levels


def lines(**quantities: int) -> list[StockLine]:
    return [StockLine.of(product_id, quantity) for product_id, quantity in quantities.items()]


# --- Table and catalogue ---------------------------------------------------------------------


async def test_the_table_definition_has_a_string_key_on_demand_billing_and_a_stream(
    aws: AWSClients, store: InventoryStore
) -> None:
    dynamodb = await aws.client("dynamodb")
    table = (await dynamodb.describe_table(TableName=store.table_name))["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }


async def test_a_stored_product_reads_back_with_every_field(store: InventoryStore) -> None:
    original = product(
        "croissant",
        12,
        managed_by="bakery/croissant",
        reorder_quantity=24,
        is_available=False,
        sort_order=3,
        max_per_order=6,
    )
    stored = await store.put_product(original)
    found = await store.get_product("croissant", consistent_read=True)
    assert found == stored
    assert found.model_dump(exclude={"version", "updated_at"}) == original.model_dump(
        exclude={"version", "updated_at"}
    )
    assert found.version == 1
    assert await store.get_product("ghost") is None


async def test_putting_an_existing_product_keeps_its_stock_unless_asked_to_replace_it(
    store: InventoryStore,
) -> None:
    await seed(store, croissant=10)
    await store.reserve(lines(croissant=3), order_id="order-1")
    renamed = await store.put_product(product("croissant", 99, name="Butter croissant"))
    assert renamed.name == "Butter croissant"
    assert renamed.levels == StockLevels(on_hand=10, reserved=3, available=7)
    assert renamed.version == 3
    replaced = await store.put_product(product("croissant", 99), replace_inventory=True)
    assert replaced.levels == StockLevels.initial(99)


async def test_many_products_are_read_in_batches_and_listed_in_menu_order(
    store: InventoryStore,
) -> None:
    ids = [f"item-{n:03d}" for n in range(110)]
    await asyncio.gather(
        *(store.put_product(product(pid, 1, sort_order=-n)) for n, pid in enumerate(ids))
    )
    found = await store.get_products([*ids, "ghost", ids[0]], consistent_read=True)
    assert sorted(found) == ids
    listed = await store.list_products(consistent_read=True)
    assert [item.id for item in listed] == list(reversed(ids))
    with pytest.raises(UnknownProduct) as raised:
        await store.require_products(["item-000", "ghost"])
    assert raised.value.product_ids == ["ghost"]


async def test_a_development_reset_deletes_every_product(store: InventoryStore) -> None:
    await asyncio.gather(*(store.put_product(product(f"item-{n}")) for n in range(30)))
    assert await store.delete_all() == 30
    assert await store.list_products(consistent_read=True) == []


async def test_availability_can_be_switched_off_and_blocks_reservations(
    store: InventoryStore,
) -> None:
    await seed(store, croissant=10)
    switched = await store.set_availability("croissant", False)
    assert not switched.is_available and switched.stock_status == "out_of_stock"
    with pytest.raises(InsufficientStock) as raised:
        await store.reserve(lines(croissant=1), order_id="order-1")
    assert raised.value.shortfalls == [Shortfall("croissant", 1, 0, "unavailable")]
    assert await levels(store, "croissant") == StockLevels.initial(10)
    with pytest.raises(UnknownProduct):
        await store.set_availability("ghost", True)


# --- Reservations -------------------------------------------------------------------------------


@pytest.mark.slow
async def test_fifty_concurrent_reservations_sell_exactly_the_stock(
    store: InventoryStore,
) -> None:
    await seed(store, croissant=20)
    snapshots: list[StockLevels] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            snapshots.append(await levels(store, "croissant"))

    async def attempt(n: int) -> str:
        try:
            await store.reserve(lines(croissant=1), order_id=f"order-{n}")
        except InsufficientStock as error:
            assert error.shortfalls[0].product_id == "croissant"
            assert error.shortfalls[0].available == 0
            return "short"
        return "reserved"

    watcher = asyncio.create_task(watch())
    outcomes = await asyncio.gather(*(attempt(n) for n in range(50)))
    done.set()
    await watcher

    assert outcomes.count("reserved") == 20
    assert outcomes.count("short") == 30
    final = await store.get_product("croissant", consistent_read=True)
    assert final is not None
    assert final.levels == StockLevels(on_hand=20, reserved=20, available=0)
    assert final.version == 1 + 20
    assert snapshots, "the watcher saw no intermediate state"
    for snapshot in snapshots:  # StockLevels itself refuses negative or inconsistent counts
        assert snapshot.on_hand == 20


async def test_a_reservation_short_on_one_line_leaves_every_line_untouched(
    store: InventoryStore,
) -> None:
    await seed(store, croissant=5, scone=1, bagel=0)
    before = await store.get_products(["croissant", "scone", "bagel"], consistent_read=True)
    with pytest.raises(InsufficientStock) as raised:
        await store.reserve(lines(croissant=2, scone=3, bagel=1), order_id="order-1")
    assert raised.value.shortfalls == [Shortfall("bagel", 1, 0), Shortfall("scone", 3, 1)]
    assert raised.value.extensions()["shortfalls"][1] == {
        "product_id": "scone",
        "requested": 3,
        "available": 1,
        "reason": "insufficient",
    }
    after = await store.get_products(["croissant", "scone", "bagel"], consistent_read=True)
    assert after == before


async def test_a_multi_item_reservation_moves_every_line(store: InventoryStore) -> None:
    await seed(store, croissant=5, scone=4)
    await store.reserve(
        [StockLine.of("croissant", 2), StockLine.of("scone", 1), StockLine.of("croissant", 1)],
        order_id="order-1",
    )
    assert await levels(store, "croissant") == StockLevels(on_hand=5, reserved=3, available=2)
    assert await levels(store, "scone") == StockLevels(on_hand=4, reserved=1, available=3)


async def test_reserving_an_unknown_product_writes_nothing(store: InventoryStore) -> None:
    await seed(store, croissant=5)
    with pytest.raises(UnknownProduct) as raised:
        await store.reserve(lines(croissant=1, ghost=1), order_id="order-1")
    assert raised.value.product_ids == ["ghost"]
    assert raised.value.status == 404
    assert await levels(store, "croissant") == StockLevels.initial(5)
    assert await store.get_product("ghost", consistent_read=True) is None


def test_idempotency_tokens_are_stable_per_order_and_operation() -> None:
    token = client_request_token("reserve", "order-1")
    assert token == client_request_token("reserve", "order-1")
    assert len(token) <= 36
    assert token != client_request_token("release", "order-1")
    assert token != client_request_token("reserve", "order-2")


# --- Confirm, release, restock, adjust, thresholds --------------------------------------------


async def test_confirming_a_pickup_takes_the_units_out_of_on_hand(store: InventoryStore) -> None:
    await seed(store, croissant=10, scone=3)
    await store.reserve(lines(croissant=3, scone=2), order_id="order-1")
    await store.confirm(lines(croissant=3, scone=2), order_id="order-1")
    assert await levels(store, "croissant") == StockLevels(on_hand=7, reserved=0, available=7)
    assert await levels(store, "scone") == StockLevels(on_hand=1, reserved=0, available=1)


async def test_releasing_a_cancelled_order_puts_the_units_back_on_sale(
    store: InventoryStore,
) -> None:
    await seed(store, croissant=10)
    await store.reserve(lines(croissant=4), order_id="order-1")
    await store.release(lines(croissant=4), order_id="order-1")
    found = await store.get_product("croissant", consistent_read=True)
    assert found is not None
    assert found.levels == StockLevels.initial(10)
    assert found.version == 3


@pytest.mark.parametrize("operation", ["confirm", "release"])
async def test_settling_more_than_is_reserved_is_refused_for_every_line(
    store: InventoryStore, operation: str
) -> None:
    await seed(store, croissant=10, scone=10)
    await store.reserve(lines(croissant=2, scone=1), order_id="order-1")
    before = await store.get_products(["croissant", "scone"], consistent_read=True)
    with pytest.raises(ReservationMismatch) as raised:
        await getattr(store, operation)(lines(croissant=2, scone=2))
    assert raised.value.mismatches == [Mismatch("scone", 2, 1)]
    assert await store.get_products(["croissant", "scone"], consistent_read=True) == before
    with pytest.raises(UnknownProduct):
        await getattr(store, operation)(lines(ghost=1))


async def test_restocking_grows_on_hand_and_available_and_bumps_the_version(
    store: InventoryStore,
) -> None:
    await seed(store, croissant=2)
    before = await store.get_product("croissant", consistent_read=True)
    assert before is not None
    await store.reserve(lines(croissant=1), order_id="order-1")
    after = await store.restock("croissant", 10)
    assert after.levels == StockLevels(on_hand=12, reserved=1, available=11)
    assert after.version == before.version + 2
    assert after.updated_at > before.updated_at
    with pytest.raises(UnknownProduct):
        await store.restock("ghost", 1)


async def test_adjusting_moves_on_hand_and_available_but_never_below_zero(
    store: InventoryStore,
) -> None:
    await seed(store, croissant=5)
    await store.reserve(lines(croissant=2), order_id="order-1")
    assert (await store.adjust("croissant", 4)).levels == StockLevels(9, 2, 7)
    assert (await store.adjust("croissant", -7)).levels == StockLevels(2, 2, 0)
    with pytest.raises(InsufficientStock) as raised:
        await store.adjust("croissant", -1)
    assert raised.value.shortfalls == [Shortfall("croissant", 1, 0)]
    assert await levels(store, "croissant") == StockLevels(2, 2, 0)


async def test_thresholds_are_set_kept_and_cleared(store: InventoryStore) -> None:
    await seed(store, croissant=5)
    managed = await store.set_thresholds(
        "croissant", 8, 3, reorder_quantity=24, managed_by="croissant-thresholds"
    )
    assert (managed.low_stock_threshold, managed.critical_threshold) == (8, 3)
    assert (managed.reorder_quantity, managed.managed_by) == (24, "croissant-thresholds")
    assert managed.stock_status == "low_stock"
    kept = await store.set_thresholds("croissant", 4, 4)
    assert (kept.reorder_quantity, kept.managed_by) == (24, "croissant-thresholds")
    cleared = await store.set_thresholds("croissant", 4, 1, reorder_quantity=None, managed_by=None)
    assert (cleared.reorder_quantity, cleared.managed_by) == (None, None)
    assert cleared.levels == StockLevels.initial(5)
    with pytest.raises(UnknownProduct):
        await store.set_thresholds("ghost", 1, 0)


async def test_a_validated_update_is_applied_by_kind(store: InventoryStore) -> None:
    await seed(store, croissant=5)
    await store.apply("croissant", InventoryUpdate.restock(5, reason="delivery"))
    await store.apply("croissant", InventoryUpdate.adjust(-2, reason="dropped"))
    updated = await store.apply("croissant", InventoryUpdate.thresholds(3, 1, managed_by="x"))
    assert updated.levels == StockLevels.initial(8)
    assert (updated.low_stock_threshold, updated.managed_by) == (3, "x")


# --- Input validation and failures ----------------------------------------------------------


@pytest.fixture
async def unreachable_store(make_settings: Callable[..., Settings]) -> AsyncIterator[Any]:
    """A store whose AWS endpoint refuses connections: any call that reaches AWS fails."""
    settings = make_settings(database_url=NO_DATABASE, aws_endpoint_url="http://127.0.0.1:9")
    async with AWSClients(settings) as clients:
        yield InventoryStore(clients, settings.names.products_table)


BAD_CALLS: list[tuple[str, Callable[[InventoryStore], Coroutine[Any, Any, Any]]]] = [
    ("no lines", lambda s: s.reserve([], order_id="o")),
    ("a tuple for a line", lambda s: s.reserve([("croissant", 1)], order_id="o")),  # type: ignore[list-item]
    ("an empty order id", lambda s: s.reserve(lines(croissant=1), order_id="")),
    ("an over-long order id", lambda s: s.reserve(lines(croissant=1), order_id="o" * 129)),
    ("a merged line over 999", lambda s: s.reserve(lines(croissant=999) * 2, order_id="o")),
    ("101 products", lambda s: s.confirm([StockLine.of(f"p{n}", 1) for n in range(101)])),
    ("a zero restock", lambda s: s.restock("croissant", 0)),
    ("a negative restock", lambda s: s.restock("croissant", -4)),
    ("a boolean restock", lambda s: s.restock("croissant", True)),
    ("a huge restock", lambda s: s.restock("croissant", 10**9)),
    ("a zero adjustment", lambda s: s.adjust("croissant", 0)),
    ("a malformed id", lambda s: s.restock("Croissant!", 1)),
    ("a malformed id to read", lambda s: s.get_product("../etc")),
    ("an over-long id", lambda s: s.get_products(["a" * 65])),
    ("critical above low", lambda s: s.set_thresholds("croissant", 1, 2)),
    ("negative thresholds", lambda s: s.set_thresholds("croissant", -1, -2)),
    ("a bad manager name", lambda s: s.set_thresholds("croissant", 2, 1, KEEP, "Bad Name")),
    ("a non-boolean switch", lambda s: s.set_availability("croissant", "yes")),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("case", "call"), BAD_CALLS, ids=[case for case, _ in BAD_CALLS])
async def test_bad_input_is_refused_before_any_call_to_aws(
    unreachable_store: InventoryStore,
    case: str,
    call: Callable[[InventoryStore], Coroutine[Any, Any, Any]],
) -> None:
    # An unreachable endpoint would turn any AWS call into ServiceUnavailable.
    with pytest.raises(InvalidInput) as raised:
        await call(unreachable_store)
    assert raised.value.status == 422
    assert raised.value.detail


async def test_bad_input_leaves_the_stored_product_untouched(store: InventoryStore) -> None:
    await seed(store, croissant=5)
    before = await store.get_product("croissant", consistent_read=True)
    for _, call in BAD_CALLS:
        with pytest.raises(InvalidInput):
            await call(store)
    assert await store.get_product("croissant", consistent_read=True) == before


async def test_an_unreachable_stock_service_is_reported_as_unavailable(
    unreachable_store: InventoryStore,
) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="stock service is unreachable") as raised:
        await unreachable_store.reserve(lines(croissant=1), order_id="order-1")
    assert raised.value.status == 503
    assert time.monotonic() - started < 20


async def test_a_missing_table_is_reported_as_unavailable(
    aws: AWSClients, settings: Settings
) -> None:
    missing = InventoryStore(aws, settings.names.products_table + "-missing")
    with pytest.raises(ServiceUnavailable, match="does not exist"):
        await missing.get_product("croissant")


# --- Property: the store behaves like StockLevels --------------------------------------------


class Runner:
    """Drives the async store from Hypothesis' synchronous state machine, on a loop of its own."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.clients = AWSClients(settings)
        self.prefix = settings.names.products_table

    def __call__(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        try:
            self(self.clients.close())
        finally:
            self.loop.close()


PRODUCTS = 3
line_specs = st.lists(
    st.tuples(st.integers(0, PRODUCTS - 1), st.integers(1, 6)), min_size=1, max_size=4
)


class StockMachine(RuleBasedStateMachine):
    """Random reserve/confirm/release/restock/adjust sequences against DynamoDB and the model."""

    runner: Runner

    def __init__(self) -> None:
        super().__init__()
        # A table per example: moto copies a table's whole stream history on every
        # transaction, so one long-lived table would make each example slower than the last.
        self.table = f"{self.runner.prefix}-{uuid.uuid4().hex[:8]}"
        self.runner(create_table(self.runner.clients, self.table))
        self.store = InventoryStore(self.runner.clients, self.table)
        self.ids = [f"p{n}" for n in range(PRODUCTS)]
        self.model: dict[str, StockLevels] = {}

    def teardown(self) -> None:
        self.runner(drop_table(self.runner.clients, self.table))

    def lines(self, specs: list[tuple[int, int]]) -> list[StockLine]:
        return [StockLine.of(self.ids[index], quantity) for index, quantity in specs]

    def settle_model(
        self, operation: str, merged: list[StockLine]
    ) -> tuple[dict[str, StockLevels], list[Any]]:
        """The model after applying every line, or the lines that fail (all or nothing)."""
        after, failures = dict(self.model), []
        for line in merged:
            try:
                after[line.product_id] = getattr(after[line.product_id], operation)(
                    line.quantity, product_id=line.product_id
                )
            except InsufficientStock as error:
                failures.extend(error.shortfalls)
            except ReservationMismatch as error:
                failures.extend(error.mismatches)
        return after, failures

    @initialize(stock=st.lists(st.integers(0, 8), min_size=PRODUCTS, max_size=PRODUCTS))
    def seed(self, stock: list[int]) -> None:
        for product_id, on_hand in zip(self.ids, stock, strict=True):
            self.runner(self.store.put_product(product(product_id, on_hand)))
            self.model[product_id] = StockLevels.initial(on_hand)

    @rule(specs=line_specs)
    def reserve(self, specs: list[tuple[int, int]]) -> None:
        self.multi_line("reserve", specs, InsufficientStock)

    @rule(specs=line_specs)
    def confirm(self, specs: list[tuple[int, int]]) -> None:
        self.multi_line("confirm", specs, ReservationMismatch)

    @rule(specs=line_specs)
    def release(self, specs: list[tuple[int, int]]) -> None:
        self.multi_line("release", specs, ReservationMismatch)

    def multi_line(
        self, operation: str, specs: list[tuple[int, int]], error: type[PickupError]
    ) -> None:
        requested = self.lines(specs)
        after, failures = self.settle_model(operation, merge_lines(requested))
        call = getattr(self.store, operation)
        kwargs = {"order_id": uuid.uuid4().hex}
        if failures:
            with pytest.raises(error) as raised:
                self.runner(call(requested, **kwargs))
            found = getattr(raised.value, "shortfalls", None) or raised.value.mismatches  # type: ignore[attr-defined]
            assert found == sorted(failures, key=lambda failure: failure.product_id)
        else:
            self.runner(call(requested, **kwargs))
            self.model = after

    @rule(index=st.integers(0, PRODUCTS - 1), quantity=st.integers(1, 10))
    def restock(self, index: int, quantity: int) -> None:
        product_id = self.ids[index]
        stored = self.runner(self.store.restock(product_id, quantity))
        self.model[product_id] = self.model[product_id].restock(quantity)
        assert stored.levels == self.model[product_id]

    @rule(
        index=st.integers(0, PRODUCTS - 1),
        delta=st.integers(-8, 8).filter(lambda delta: delta != 0),
    )
    def adjust(self, index: int, delta: int) -> None:
        product_id = self.ids[index]
        try:
            expected = self.model[product_id].adjust(delta, product_id=product_id)
        except InsufficientStock as short:
            with pytest.raises(InsufficientStock) as raised:
                self.runner(self.store.adjust(product_id, delta))
            assert raised.value.shortfalls == short.shortfalls
            return
        stored = self.runner(self.store.adjust(product_id, delta))
        self.model[product_id] = expected
        assert stored.levels == expected

    @invariant()
    def store_matches_the_model(self) -> None:
        if not self.model:
            return
        stored = self.runner(self.store.get_products(self.ids, consistent_read=True))
        for product_id, expected in self.model.items():
            found = stored[product_id]
            assert found.on_hand == found.available + found.reserved
            assert min(found.on_hand, found.available, found.reserved) >= 0
            assert found.levels == expected


@pytest.mark.slow
def test_random_stock_operations_keep_dynamodb_equal_to_the_model(settings: Settings) -> None:
    runner = Runner(settings)
    StockMachine.runner = runner
    try:
        run_state_machine_as_test(
            StockMachine,
            settings=hypothesis_settings(
                max_examples=25,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        runner.close()
