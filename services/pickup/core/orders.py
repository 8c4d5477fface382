"""The order life cycle and the public order code. Pure domain: standard library only.

An order moves ``pending -> confirmed -> preparing -> ready -> picked_up``. It may be
cancelled from any state before pickup, and a ``pending`` order that is never confirmed is
expired by the system (the sweeper releases its stock reservation). ``picked_up``,
``cancelled`` and ``expired`` are terminal.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from pickup.core.errors import Conflict, InvalidInput


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    PREPARING = "preparing"
    READY = "ready"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Actor(StrEnum):
    """Who caused a status change; recorded in the order's status history."""

    CUSTOMER = "customer"
    STAFF = "staff"
    SYSTEM = "system"


class ReservationState(StrEnum):
    """Where an order's stock reservation stands (in DynamoDB)."""

    HELD = "held"
    CONFIRMED = "confirmed"
    RELEASED = "released"


TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        OrderStatus.PENDING: frozenset(
            {OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
        ),
        OrderStatus.CONFIRMED: frozenset({OrderStatus.PREPARING, OrderStatus.CANCELLED}),
        OrderStatus.PREPARING: frozenset({OrderStatus.READY, OrderStatus.CANCELLED}),
        OrderStatus.READY: frozenset({OrderStatus.PICKED_UP, OrderStatus.CANCELLED}),
        OrderStatus.PICKED_UP: frozenset(),
        OrderStatus.CANCELLED: frozenset(),
        OrderStatus.EXPIRED: frozenset(),
    }
)

TERMINAL_STATUSES: frozenset[OrderStatus] = frozenset(
    status for status, targets in TRANSITIONS.items() if not targets
)

# Only the sweeper may expire an order: a person who wants to stop one cancels it instead.
_SYSTEM_ONLY: frozenset[OrderStatus] = frozenset({OrderStatus.EXPIRED})

# The order of the board: used so `allowed` lists read the way staff expect.
_ORDER = list(OrderStatus)


def is_terminal(status: OrderStatus | str) -> bool:
    return OrderStatus(status) in TERMINAL_STATUSES


def allowed_next(status: OrderStatus | str, actor: Actor | str | None = None) -> list[OrderStatus]:
    """The statuses ``status`` may move to, in life-cycle order.

    With ``actor`` given, the list is narrowed to what that actor may do; without it, every
    transition the life cycle allows is listed.
    """
    targets = TRANSITIONS[OrderStatus(status)]
    if actor is not None and Actor(actor) is not Actor.SYSTEM:
        targets = targets - _SYSTEM_ONLY
    return sorted(targets, key=_ORDER.index)


class InvalidTransition(Conflict):
    type = "invalid-transition"
    title = "The order cannot move to that status"

    def __init__(
        self,
        current: OrderStatus,
        requested: OrderStatus,
        allowed: list[OrderStatus],
        detail: str | None = None,
    ) -> None:
        self.current = current
        self.requested = requested
        self.allowed = allowed
        super().__init__(detail or f"an order that is {current} cannot become {requested}")

    def extensions(self) -> dict[str, Any]:
        return {
            "current": str(self.current),
            "requested": str(self.requested),
            "allowed": [str(status) for status in self.allowed],
        }


def check_transition(
    current: OrderStatus | str,
    requested: OrderStatus | str,
    *,
    actor: Actor | str | None = None,
) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> requested`` is allowed.

    ``actor`` narrows the check as in :func:`allowed_next` (only the system may expire).
    """
    current, requested = OrderStatus(current), OrderStatus(requested)
    allowed = allowed_next(current, actor)
    if requested in allowed:
        return
    detail = None
    if requested in TRANSITIONS[current]:
        detail = f"only the system may move an order to {requested}"
    raise InvalidTransition(current, requested, allowed, detail)


# --- Public order codes ----------------------------------------------------------------------

# Crockford's base32: no I, L, O or U, so a code read aloud or off a screen is unambiguous.
ORDER_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ORDER_CODE_LENGTH = 6

# What people type for the letters the alphabet leaves out (Crockford's decoding rules).
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans("", "", " -_\t")
_MAX_INPUT = 32


def new_order_code() -> str:
    """A random code the counter calls out, e.g. ``K7M2QX`` (32**6, about 10**9, values).

    Not a secret and not unique by construction: the database's unique constraint is the
    guarantee, and the caller draws again on the rare collision.
    """
    return "".join(secrets.choice(ORDER_CODE_ALPHABET) for _ in range(ORDER_CODE_LENGTH))


def normalise_order_code(text: str) -> str:
    """The canonical form of a code a customer or staff member typed, or :class:`InvalidInput`.

    Case, spaces, dashes and a leading ``#`` are ignored; O, I and L are read as 0, 1 and 1.
    """
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        raise InvalidInput("an order code is 6 letters and digits", field="code")
    code = text.strip().removeprefix("#").translate(_SEPARATORS).upper().translate(_LOOKALIKES)
    if len(code) != ORDER_CODE_LENGTH or any(char not in ORDER_CODE_ALPHABET for char in code):
        raise InvalidInput("an order code is 6 letters and digits", field="code")
    return code
