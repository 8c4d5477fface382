"""How an order's status reads to a customer: labels, messages and progress steps (pure)."""

from __future__ import annotations

from pickup.core.orders import OrderStatus, is_terminal
from pickup.orders.schemas import ProgressStep, StepState

STEPS: list[tuple[OrderStatus, str]] = [
    (OrderStatus.PENDING, "Received"),
    (OrderStatus.CONFIRMED, "Confirmed"),
    (OrderStatus.PREPARING, "Preparing"),
    (OrderStatus.READY, "Ready for pickup"),
    (OrderStatus.PICKED_UP, "Picked up"),
]

LABELS = {
    OrderStatus.PENDING: "Received",
    OrderStatus.CONFIRMED: "Confirmed",
    OrderStatus.PREPARING: "Preparing",
    OrderStatus.READY: "Ready for pickup",
    OrderStatus.PICKED_UP: "Picked up",
    OrderStatus.CANCELLED: "Cancelled",
    OrderStatus.EXPIRED: "Expired",
}

MESSAGES = {
    OrderStatus.PENDING: "We have your order and are confirming it.",
    OrderStatus.CONFIRMED: "Your order is confirmed and in the queue.",
    OrderStatus.PREPARING: "We are preparing your order now.",
    OrderStatus.READY: "Your order is ready: come to the counter and give your code.",
    OrderStatus.PICKED_UP: "Enjoy! Thanks for ordering with us.",
    OrderStatus.CANCELLED: "This order was cancelled. Nothing was charged for it.",
    OrderStatus.EXPIRED: "This order could not be confirmed in time and was released.",
}


def progress(status: OrderStatus) -> list[ProgressStep]:
    """The five steps, each done, current or upcoming; skipped ones after a cancellation."""
    order = [step for step, _ in STEPS]
    if status in order:
        position = order.index(status)
        states: list[StepState] = [
            "done" if index < position else "current" if index == position else "upcoming"
            for index in range(len(order))
        ]
        if status is OrderStatus.PICKED_UP:
            states[-1] = "done"
    else:
        states = ["done"] + ["skipped"] * (len(order) - 1)
    return [
        ProgressStep(key=step.value, label=label, state=state)
        for (step, label), state in zip(STEPS, states, strict=True)
    ]


def describe(status: OrderStatus) -> tuple[str, str, bool]:
    """(label, message, final) of ``status``."""
    return LABELS[status], MESSAGES[status], is_terminal(status)
