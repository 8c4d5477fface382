"""Products and stock in DynamoDB: one item per product, moved only by conditional writes.

The arithmetic is in :mod:`pickup.core.inventory`; here each operation is one atomic
``UpdateItem`` or, for several lines, one ``TransactWriteItems`` (all lines or none), so stock
never goes negative and a failed checkout never holds half an order.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import ValidationError

from pickup.adapters.aws import AWSClients
from pickup.core.errors import InvalidInput, PickupError, ServiceUnavailable
from pickup.core.inventory import (
    KEEP,
    MAX_STOCK,
    InsufficientStock,
    InventoryUpdate,
    Keep,
    Mismatch,
    ProductWithInventory,
    ReservationMismatch,
    Shortfall,
    StockLine,
    UnknownProduct,
    invalid_input_from,
    merge_lines,
    require_product_id,
)

UNREACHABLE = "The stock service is unreachable; please try again in a moment."

# Catalogue fields a product upsert always writes; the inventory fields below are written only
# for a new product unless the caller asks to replace them, so editing a name or a price never
# overwrites stock that checkouts are moving at the same moment.
_CATALOGUE_FIELDS = (
    "name",
    "description",
    "category",
    "price_cents",
    "currency",
    "allergens",
    "image",
    "is_available",
    "sort_order",
    "max_per_order",
)
_INVENTORY_FIELDS = (
    "on_hand",
    "reserved",
    "available",
    "low_stock_threshold",
    "critical_threshold",
    "reorder_quantity",
    "managed_by",
)

# Cancellation reasons worth another attempt: nothing was written and the cause is transient.
_TRANSIENT_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_TRANSIENT_ERRORS = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
}
_TRANSACTION_ATTEMPTS = 5
_BATCH_ATTEMPTS = 8
_BATCH_GET_SIZE = 100
_BATCH_WRITE_SIZE = 25
_MAX_ORDER_ID_LENGTH = 128


def products_table_definition(name: str) -> dict[str, Any]:
    """``create_table`` keyword arguments for the products table."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def client_request_token(operation: str, order_id: str) -> str:
    """The idempotency token of one operation on one order (DynamoDB allows 1-36 characters).

    The same order and operation always give the same token, so a retry of a call whose answer
    was lost is applied once; reserve and release of one order get different tokens.
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pickup:stock:{operation}:{order_id}"))


# --- Item encoding --------------------------------------------------------------------------


def to_attribute(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, datetime):
        return {"S": value.astimezone(UTC).isoformat()}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(item) for item in value]}
    raise TypeError(f"cannot store {type(value).__name__} in the products table")


def from_attribute(attribute: dict[str, Any]) -> Any:
    (kind, value), *_ = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "L":
        return [from_attribute(item) for item in value]
    if kind == "M":
        return {key: from_attribute(item) for key, item in value.items()}
    if kind == "SS":
        return list(value)
    raise TypeError(f"unexpected DynamoDB attribute type {kind}")


def product_from_item(item: dict[str, Any]) -> ProductWithInventory:
    return ProductWithInventory.model_validate(
        {key: from_attribute(value) for key, value in item.items()}
    )


def _int(item: dict[str, Any] | None, name: str) -> int:
    if not item or name not in item:
        return 0
    return int(from_attribute(item[name]))


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class ChangeNote:
    """Who changed stock by hand and why: stored on the item with the change, so the ledger
    row the stream consumer writes for it carries them (and ``change_id`` dedupes it against
    the row the API writes itself)."""

    change_id: str
    reason: str | None = None
    staff_id: str | None = None


class _Expression:
    """An update expression with every attribute name and value as a placeholder.

    Placeholders everywhere avoid DynamoDB's reserved words (``name``, ``reserved`` ...).
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, key: str, value: Any) -> str:
        placeholder = f":{key}"
        self.values[placeholder] = to_attribute(value)
        return placeholder

    def stamp(self) -> str:
        """The clause every write carries: a new version and the time of the change."""
        version, updated_at = self.name("version"), self.name("updated_at")
        return (
            f"{version} = if_not_exists({version}, {self.value('zero', 0)}) + "
            f"{self.value('one', 1)}, {updated_at} = {self.value('now', _now())}"
        )

    def attribution(self, change: ChangeNote | None) -> str:
        """The clause naming who made a change and why, for the stream consumer's ledger."""
        if change is None:
            return ""
        return ", " + ", ".join(
            f"{self.name(field)} = {self.value(field, value)}"
            for field, value in (
                ("last_change_id", change.change_id),
                ("last_change_reason", change.reason),
                ("last_change_by", change.staff_id),
            )
        )

    def hold(self, order_id: str) -> str:
        """``holds :hold``, for ADD (a reservation) or DELETE (its release or confirm)."""
        self.values[":hold"] = {"SS": [order_id]}
        return f"{self.name('holds')} :hold"

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


# --- The store ----------------------------------------------------------------------------


class InventoryStore:
    """Products and their stock in one DynamoDB table (see :func:`products_table_definition`).

    Every method validates its input before calling AWS; a write bumps ``version`` and
    ``updated_at``. AWS being unreachable raises :class:`ServiceUnavailable`.
    """

    def __init__(self, clients: AWSClients, table_name: str) -> None:
        self._clients = clients
        self.table_name = table_name

    async def _client(self) -> Any:
        with self._translate_errors():
            return await self._clients.client("dynamodb")

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except (BotoConnectionError, HTTPClientError) as error:
            raise ServiceUnavailable(UNREACHABLE) from error
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise ServiceUnavailable(
                    f"The stock table {self.table_name!r} does not exist; "
                    "provision it before starting the service."
                ) from error
            if code in _TRANSIENT_ERRORS:
                raise ServiceUnavailable(
                    "The stock service is busy; please try again in a moment.", retry_after=1
                ) from error
            raise

    # --- Reads ------------------------------------------------------------------------------

    async def get_product(
        self, product_id: str, *, consistent_read: bool = False
    ) -> ProductWithInventory | None:
        require_product_id(product_id)
        client = await self._client()
        with self._translate_errors():
            response = await client.get_item(
                TableName=self.table_name,
                Key={"id": {"S": product_id}},
                ConsistentRead=consistent_read,
            )
        item = response.get("Item")
        return product_from_item(item) if item else None

    async def get_products(
        self, product_ids: Iterable[str], *, consistent_read: bool = False
    ) -> dict[str, ProductWithInventory]:
        """The products that exist among ``product_ids``, by id (missing ids are left out)."""
        wanted = list(dict.fromkeys(require_product_id(pid) for pid in product_ids))
        client = await self._client()
        found: dict[str, ProductWithInventory] = {}
        for start in range(0, len(wanted), _BATCH_GET_SIZE):
            keys = [{"id": {"S": pid}} for pid in wanted[start : start + _BATCH_GET_SIZE]]
            request = {self.table_name: {"Keys": keys, "ConsistentRead": consistent_read}}
            for attempt in range(_BATCH_ATTEMPTS):
                with self._translate_errors():
                    response = await client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    product = product_from_item(item)
                    found[product.id] = product
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                await _backoff(attempt)
            else:
                raise ServiceUnavailable("The stock service is busy; please try again.", 1)
        return found

    async def require_products(
        self, product_ids: Iterable[str], *, consistent_read: bool = False
    ) -> dict[str, ProductWithInventory]:
        """Like :meth:`get_products`, but any missing id raises :class:`UnknownProduct`."""
        wanted = list(product_ids)
        found = await self.get_products(wanted, consistent_read=consistent_read)
        if missing := [pid for pid in wanted if pid not in found]:
            raise UnknownProduct(missing)
        return found

    async def _scan(self, consistent_read: bool, **extra: Any) -> AsyncIterator[dict[str, Any]]:
        client = await self._client()
        paginator = client.get_paginator("scan")
        with self._translate_errors():
            async for page in paginator.paginate(
                TableName=self.table_name, ConsistentRead=consistent_read, **extra
            ):
                for item in page.get("Items", []):
                    yield item

    async def list_products(self, *, consistent_read: bool = False) -> list[ProductWithInventory]:
        """Every product, in menu order (``sort_order``, then name)."""
        products = [product_from_item(item) async for item in self._scan(consistent_read)]
        return sorted(products, key=lambda product: (product.sort_order, product.name, product.id))

    # --- Catalogue writes -------------------------------------------------------------------

    async def put_product(
        self, product: ProductWithInventory, *, replace_inventory: bool = False
    ) -> ProductWithInventory:
        """Create or update a product; returns it as stored.

        An existing product keeps its stock levels, thresholds and ``managed_by`` unless
        ``replace_inventory`` is true (seeding and development resets only: it overwrites
        stock that checkouts may be reserving).
        """
        if not isinstance(product, ProductWithInventory):
            raise InvalidInput("expected a ProductWithInventory", field="product")
        data = product.model_dump()
        expression = _Expression()
        clauses = [expression.stamp()]
        for field in _CATALOGUE_FIELDS:
            clauses.append(f"{expression.name(field)} = {expression.value(field, data[field])}")
        for field in _INVENTORY_FIELDS:
            name, value = expression.name(field), expression.value(field, data[field])
            clauses.append(
                f"{name} = {value}"
                if replace_inventory
                else f"{name} = if_not_exists({name}, {value})"
            )
        return await self._update(
            product.id, "SET " + ", ".join(clauses), expression, condition=None
        )

    async def set_availability(self, product_id: str, is_available: bool) -> ProductWithInventory:
        """Staff's switch: an unavailable product cannot be reserved, whatever its stock."""
        require_product_id(product_id)
        if not isinstance(is_available, bool):
            raise InvalidInput("is_available must be true or false", field="is_available")
        expression = _Expression()
        update = (
            f"SET {expression.name('is_available')} = {expression.value('flag', is_available)}, "
            + expression.stamp()
        )
        return await self._update(product_id, update, expression)

    async def delete_product(self, product_id: str) -> bool:
        """Remove a product; whether it existed."""
        require_product_id(product_id)
        client = await self._client()
        with self._translate_errors():
            response = await client.delete_item(
                TableName=self.table_name, Key={"id": {"S": product_id}}, ReturnValues="ALL_OLD"
            )
        return bool(response.get("Attributes"))

    async def delete_all(self) -> int:
        """Delete every product (a development reset); returns how many were deleted."""
        client = await self._client()
        keys = [
            {"id": item["id"]}
            async for item in self._scan(
                True, ProjectionExpression="#id", ExpressionAttributeNames={"#id": "id"}
            )
        ]
        for start in range(0, len(keys), _BATCH_WRITE_SIZE):
            requests = [
                {"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH_WRITE_SIZE]
            ]
            pending: dict[str, Any] = {self.table_name: requests}
            for attempt in range(_BATCH_ATTEMPTS):
                with self._translate_errors():
                    response = await client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                await _backoff(attempt)
            else:
                raise ServiceUnavailable("The stock service is busy; please try again.", 1)
        return len(keys)

    # --- Stock: several lines, one transaction ------------------------------------------------

    async def reserve(self, lines: Iterable[StockLine], *, order_id: str) -> None:
        """Hold stock for every line of an order, or for none.

        Raises :class:`InsufficientStock` naming each short line and what is left,
        :class:`UnknownProduct` naming products that do not exist; nothing is written then.
        """
        merged = merge_lines(lines)
        order_id = _order_id(order_id)
        token = client_request_token("reserve", order_id)
        actions = []
        for line in merged:
            expression = _Expression()
            available, reserved = expression.name("available"), expression.name("reserved")
            q = expression.value("q", line.quantity)
            actions.append(
                self._transact_update(
                    line.product_id,
                    f"SET {available} = {available} - {q}, {reserved} = {reserved} + {q}, "
                    + expression.stamp()
                    + f" ADD {expression.hold(order_id)}",
                    f"attribute_exists({expression.name('id')}) AND {available} >= {q} AND "
                    f"{expression.name('is_available')} = {expression.value('true', True)}",
                    expression,
                )
            )
        reasons = await self._transact(actions, token)
        if reasons is None:
            return
        unknown, shortfalls = [], []
        for line, reason in zip(merged, reasons, strict=True):
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            item = reason.get("Item")
            if not item:
                unknown.append(line.product_id)
            elif not from_attribute(item.get("is_available", {"BOOL": False})):
                shortfalls.append(Shortfall(line.product_id, line.quantity, 0, "unavailable"))
            else:
                shortfalls.append(
                    Shortfall(line.product_id, line.quantity, _int(item, "available"))
                )
        _raise_for(reasons, unknown)
        raise InsufficientStock(shortfalls)

    async def confirm(self, lines: Iterable[StockLine], *, order_id: str | None = None) -> None:
        """The order was picked up: its reserved units leave the shop (all lines or none)."""
        await self._settle("confirm", lines, order_id, moves="on_hand")

    async def release(self, lines: Iterable[StockLine], *, order_id: str | None = None) -> None:
        """The order was cancelled or expired: its reserved units are on sale again."""
        await self._settle("release", lines, order_id, moves="available")

    async def release_held(self, lines: Iterable[StockLine], *, order_id: str) -> bool:
        """Release an order's reservation only if its products still hold it: ``False`` when
        they do not (never reserved, or released already), and nothing changes then.

        Every reservation marks its products with the order id (``holds``) and every release
        or confirm with an order id removes the mark, so a checkout whose fate is unknown (its
        process died between reserving and saving the order) is released at most once, and
        never when the reservation did not happen.
        """
        return await self._settle("release", lines, order_id, moves="available", held_only=True)

    async def _settle(
        self,
        operation: str,
        lines: Iterable[StockLine],
        order_id: str | None,
        *,
        moves: Literal["on_hand", "available"],
        held_only: bool = False,
    ) -> bool:
        merged = merge_lines(lines)
        order_id = None if order_id is None else _order_id(order_id)
        token = None if order_id is None else client_request_token(operation, order_id)
        sign = "-" if moves == "on_hand" else "+"
        actions = []
        for line in merged:
            expression = _Expression()
            reserved, other = expression.name("reserved"), expression.name(moves)
            q = expression.value("q", line.quantity)
            update = f"SET {reserved} = {reserved} - {q}, {other} = {other} {sign} {q}, "
            update += expression.stamp()
            condition = f"attribute_exists({expression.name('id')}) AND {reserved} >= {q}"
            if order_id is not None:
                update += f" DELETE {expression.hold(order_id)}"
            if held_only and order_id is not None:
                oid = expression.value("oid", order_id)
                condition += f" AND contains({expression.name('holds')}, {oid})"
            actions.append(self._transact_update(line.product_id, update, condition, expression))
        reasons = await self._transact(actions, token)
        if reasons is None:
            return True
        unknown, mismatches, not_held = [], [], 0
        for line, reason in zip(merged, reasons, strict=True):
            if reason.get("Code") != "ConditionalCheckFailed":
                continue
            item = reason.get("Item")
            if not item:
                unknown.append(line.product_id)
            else:
                not_held += order_id not in from_attribute(item.get("holds", {"SS": []}))
                mismatches.append(Mismatch(line.product_id, line.quantity, _int(item, "reserved")))
        _raise_for(reasons, unknown)
        if held_only and not_held == len(mismatches):
            return False  # not reserved, or settled already: nothing to do
        raise ReservationMismatch(mismatches)

    def _transact_update(
        self, product_id: str, update: str, condition: str, expression: _Expression
    ) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"id": {"S": product_id}},
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                **expression.params(),
            }
        }

    async def _transact(
        self, actions: list[dict[str, Any]], token: str | None
    ) -> list[dict[str, Any]] | None:
        """Run one transaction; ``None`` when it committed, else its cancellation reasons.

        Transactions cancelled only for transient reasons (a concurrent transaction on the same
        item, throttling) wrote nothing and are tried again.
        """
        client = await self._client()
        params: dict[str, Any] = {"TransactItems": actions}
        if token is not None:
            params["ClientRequestToken"] = token
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                with self._translate_errors():
                    await client.transact_write_items(**params)
                return None
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = error.response.get("CancellationReasons") or []
                codes = {reason.get("Code") for reason in reasons}
                if "ConditionalCheckFailed" in codes or not codes & _TRANSIENT_REASONS:
                    return reasons or [{"Code": "Unknown"}] * len(actions)
            await _backoff(attempt)
        raise ServiceUnavailable("The stock service is busy; please try again.", retry_after=1)

    # --- Stock: one product ---------------------------------------------------------------------

    async def apply(self, product_id: str, update: InventoryUpdate) -> ProductWithInventory:
        """Apply a validated staff change (restock, adjust or thresholds)."""
        if update.kind == "restock":
            assert update.quantity is not None
            return await self.restock(product_id, update.quantity)
        if update.kind == "adjust":
            assert update.delta is not None
            return await self.adjust(product_id, update.delta)
        assert update.low_stock_threshold is not None and update.critical_threshold is not None
        return await self.set_thresholds(
            product_id,
            update.low_stock_threshold,
            update.critical_threshold,
            reorder_quantity=update.reorder_quantity if update.sets("reorder_quantity") else KEEP,
            managed_by=update.managed_by if update.sets("managed_by") else KEEP,
        )

    async def restock(
        self, product_id: str, quantity: int, *, change: ChangeNote | None = None
    ) -> ProductWithInventory:
        """Delivered stock: ``on_hand`` and ``available`` both grow by ``quantity``."""
        require_product_id(product_id)
        quantity = InventoryUpdate.restock(quantity).quantity  # type: ignore[assignment]
        expression = _Expression()
        on_hand, available = expression.name("on_hand"), expression.name("available")
        q = expression.value("q", quantity)
        # The bound is computed here because conditions cannot add to an attribute.
        limit = expression.value("limit", MAX_STOCK - quantity)
        update = f"SET {on_hand} = {on_hand} + {q}, {available} = {available} + {q}, "
        try:
            return await self._update(
                product_id,
                update + expression.stamp() + expression.attribution(change),
                expression,
                condition=f"attribute_exists({expression.name('id')}) AND {on_hand} <= {limit}",
            )
        except _ConditionFailed:
            raise InvalidInput(
                f"restocking {quantity} would take {product_id} above {MAX_STOCK} units",
                field="quantity",
            ) from None

    async def adjust(
        self, product_id: str, delta: int, *, change: ChangeNote | None = None
    ) -> ProductWithInventory:
        """Correct a count: ``on_hand`` and ``available`` move by ``delta`` together.

        Reserved units cannot be written off, so a negative ``delta`` needs that many available.
        """
        require_product_id(product_id)
        delta = InventoryUpdate.adjust(delta).delta  # type: ignore[assignment]
        expression = _Expression()
        on_hand, available = expression.name("on_hand"), expression.name("available")
        d = expression.value("d", delta)
        if delta < 0:
            guard = f"{available} >= {expression.value('need', -delta)}"
        else:
            guard = f"{on_hand} <= {expression.value('limit', MAX_STOCK - delta)}"
        update = f"SET {on_hand} = {on_hand} + {d}, {available} = {available} + {d}, "
        try:
            return await self._update(
                product_id,
                update + expression.stamp() + expression.attribution(change),
                expression,
                condition=f"attribute_exists({expression.name('id')}) AND {guard}",
            )
        except _ConditionFailed as failed:
            if delta < 0:
                raise InsufficientStock(
                    [Shortfall(product_id, -delta, _int(failed.item, "available"))]
                ) from None
            raise InvalidInput(
                f"adding {delta} would take {product_id} above {MAX_STOCK} units", field="delta"
            ) from None

    async def set_thresholds(
        self,
        product_id: str,
        low: int,
        critical: int,
        reorder_quantity: int | Keep | None = KEEP,
        managed_by: str | Keep | None = KEEP,
    ) -> ProductWithInventory:
        """Set the low-stock and critical thresholds (``critical <= low``).

        ``reorder_quantity`` and ``managed_by`` are left as they are unless given; ``None``
        clears them (``managed_by`` names the InventoryThreshold resource that owns them).
        """
        require_product_id(product_id)
        change = InventoryUpdate.thresholds(low, critical, reorder_quantity, managed_by)
        expression = _Expression()
        clauses = [
            f"{expression.name('low_stock_threshold')} = {expression.value('low', low)}",
            f"{expression.name('critical_threshold')} = {expression.value('critical', critical)}",
        ]
        for field in ("reorder_quantity", "managed_by"):
            if change.sets(field):
                value = expression.value(field, getattr(change, field))
                clauses.append(f"{expression.name(field)} = {value}")
        clauses.append(expression.stamp())
        return await self._update(product_id, "SET " + ", ".join(clauses), expression)

    async def _update(
        self,
        product_id: str,
        update: str,
        expression: _Expression,
        condition: str | None = "attribute_exists(#id)",
    ) -> ProductWithInventory:
        """One conditional ``UpdateItem``; returns the product as it now is.

        A failed condition on a missing item is :class:`UnknownProduct`; otherwise
        :class:`_ConditionFailed` carries the item so the caller can say what was wrong.
        """
        client = await self._client()
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"id": {"S": product_id}},
            "UpdateExpression": update,
            "ReturnValues": "ALL_NEW",
        }
        if condition is not None:
            if "#id" in condition:
                expression.name("id")
            params["ConditionExpression"] = condition
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        params.update(expression.params())
        try:
            with self._translate_errors():
                response = await client.update_item(**params)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item = error.response.get("Item")
            if not item:
                raise UnknownProduct([product_id]) from None
            raise _ConditionFailed(item) from None
        try:
            return product_from_item(response["Attributes"])
        except ValidationError as error:  # pragma: no cover - the writes keep items valid
            raise invalid_input_from(error, "product") from error


class _ConditionFailed(PickupError):
    """Internal: an existing item failed a write's condition; ``item`` is its old image."""

    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("condition failed")
        self.item = item


def _raise_for(reasons: Sequence[dict[str, Any]], unknown: list[str]) -> None:
    """Raise for a cancellation that was not (only) a stock shortfall."""
    if unknown:
        raise UnknownProduct(unknown)
    codes = {reason.get("Code") for reason in reasons} - {"None", None}
    if "ConditionalCheckFailed" not in codes:
        raise ServiceUnavailable(
            f"The stock service refused the change ({', '.join(sorted(map(str, codes)))}).",
            retry_after=1,
        )


def _order_id(order_id: object) -> str:
    text = str(order_id) if isinstance(order_id, int | uuid.UUID) else order_id
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_ORDER_ID_LENGTH:
        raise InvalidInput(
            f"order_id must be 1-{_MAX_ORDER_ID_LENGTH} characters", field="order_id"
        )
    if not text.isprintable() or text != text.strip():
        raise InvalidInput("order_id must be printable, without surrounding spaces", "order_id")
    return text


async def _backoff(attempt: int) -> None:
    # Full jitter, so competing writers do not retry in step.
    await asyncio.sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))  # noqa: S311
