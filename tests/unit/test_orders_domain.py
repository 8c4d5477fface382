from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

from pickup.core.errors import Conflict, InvalidInput
from pickup.core.inventory import InsufficientStock, StockLevels
from pickup.core.orders import (
    ORDER_CODE_ALPHABET,
    ORDER_CODE_LENGTH,
    TERMINAL_STATUSES,
    TRANSITIONS,
    Actor,
    InvalidTransition,
    OrderStatus,
    allowed_next,
    check_transition,
    is_terminal,
    new_order_code,
    normalise_order_code,
)

S = OrderStatus

VALID = {
    (S.PENDING, S.CONFIRMED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.EXPIRED),
    (S.CONFIRMED, S.PREPARING),
    (S.CONFIRMED, S.CANCELLED),
    (S.PREPARING, S.READY),
    (S.PREPARING, S.CANCELLED),
    (S.READY, S.PICKED_UP),
    (S.READY, S.CANCELLED),
}
INVALID = sorted(set(itertools.product(S, S)) - VALID)


@pytest.mark.parametrize(("current", "requested"), sorted(VALID))
def test_each_step_of_the_life_cycle_is_allowed(current: S, requested: S) -> None:
    check_transition(current, requested)
    assert requested in allowed_next(current)


@pytest.mark.parametrize(("current", "requested"), INVALID)
def test_every_other_move_is_refused_with_the_allowed_targets(current: S, requested: S) -> None:
    with pytest.raises(InvalidTransition) as raised:
        check_transition(current, requested)

    error = raised.value
    assert isinstance(error, Conflict)
    assert error.status == 409
    assert error.type == "invalid-transition"
    assert error.extensions() == {
        "current": current.value,
        "requested": requested.value,
        "allowed": [status.value for status in allowed_next(current)],
    }


@pytest.mark.parametrize("actor", [Actor.CUSTOMER, Actor.STAFF])
def test_only_the_system_may_expire_an_order(actor: Actor) -> None:
    with pytest.raises(InvalidTransition) as raised:
        check_transition(S.PENDING, S.EXPIRED, actor=actor)

    assert "system" in raised.value.detail
    assert raised.value.extensions()["allowed"] == ["confirmed", "cancelled"]
    check_transition(S.PENDING, S.EXPIRED, actor=Actor.SYSTEM)


@pytest.mark.parametrize("actor", list(Actor))
def test_any_actor_may_cancel_before_pickup(actor: Actor) -> None:
    for status in (S.PENDING, S.CONFIRMED, S.PREPARING, S.READY):
        check_transition(status, S.CANCELLED, actor=actor)


def test_the_next_statuses_are_listed_in_life_cycle_order() -> None:
    assert allowed_next(S.PENDING) == [S.CONFIRMED, S.CANCELLED, S.EXPIRED]
    assert allowed_next(S.PENDING, Actor.STAFF) == [S.CONFIRMED, S.CANCELLED]
    assert allowed_next(S.READY) == [S.PICKED_UP, S.CANCELLED]


@pytest.mark.parametrize("status", list(S))
def test_terminal_statuses_are_exactly_those_with_no_way_out(status: S) -> None:
    assert is_terminal(status) == (allowed_next(status) == [])
    assert is_terminal(status) == (status in {S.PICKED_UP, S.CANCELLED, S.EXPIRED})
    assert (status in TERMINAL_STATUSES) == is_terminal(status)


def test_statuses_read_from_storage_as_plain_strings_are_accepted() -> None:
    check_transition("ready", "picked_up", actor="staff")
    assert allowed_next("confirmed") == [S.PREPARING, S.CANCELLED]


def test_an_unknown_status_is_a_programming_error_not_a_conflict() -> None:
    with pytest.raises(ValueError, match="shipped"):
        check_transition("pending", "shipped")


# --- order codes ------------------------------------------------------------------------------


def test_the_code_alphabet_has_no_letters_that_read_as_others() -> None:
    assert len(ORDER_CODE_ALPHABET) == len(set(ORDER_CODE_ALPHABET)) == 32
    assert not set("ILOU") & set(ORDER_CODE_ALPHABET)


def test_a_new_code_is_six_characters_of_the_alphabet() -> None:
    for _ in range(1000):
        code = new_order_code()
        assert len(code) == ORDER_CODE_LENGTH == 6
        assert set(code) <= set(ORDER_CODE_ALPHABET)
        assert normalise_order_code(code) == code


def test_codes_rarely_collide_and_use_the_whole_alphabet() -> None:
    codes = [new_order_code() for _ in range(10_000)]
    # 10,000 draws from 32**6 collide about 0.05 times on average; three or more
    # collisions happen about once in 60,000 runs, so this does not flake.
    assert len(codes) - len(set(codes)) <= 2
    letters = Counter("".join(codes))
    assert set(letters) == set(ORDER_CODE_ALPHABET)
    # Each symbol is expected 1,875 times; a biased draw would stray far from that.
    assert all(1_500 < count < 2_250 for count in letters.values())


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("K7M2QX", "K7M2QX"),
        ("k7m2qx", "K7M2QX"),
        ("  k7m-2qx ", "K7M2QX"),
        ("K7M 2QX", "K7M2QX"),
        ("#K7M2QX", "K7M2QX"),
        ("A0B1C1", "A0B1C1"),
        ("AOBICL", "A0B1C1"),  # O, I and L are read as the digits they resemble
        ("aobicl", "A0B1C1"),
    ],
)
def test_a_typed_code_is_normalised(typed: str, expected: str) -> None:
    assert normalise_order_code(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "K7M2Q",  # too short
        "K7M2QXZ",  # too long
        "K7M2QU",  # U is not in the alphabet
        "K7M2Q!",
        "K7M2Q\u00c9",
        "K7M2QX" * 10,
        "K7M\n2QX\x00",
    ],
)
def test_a_malformed_code_is_rejected_as_invalid_input(typed: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        normalise_order_code(typed)

    assert raised.value.status == 422
    assert raised.value.field == "code"


def test_a_code_that_is_not_text_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        normalise_order_code(123456)  # type: ignore[arg-type]


# --- Whole life cycles (Hypothesis state machine) ----------------------------------------------


class OrderLifeCycles(RuleBasedStateMachine):
    """Orders of one product placed, moved by any actor to any status, and restocked, in any
    order, the way the services use the domain: a move is checked first, and only an accepted
    one changes the status, adds a history row and moves stock (pickup confirms the
    reservation, cancel and expiry release it).

    Checked throughout: a move is accepted exactly when the life cycle and the actor allow
    it; a terminal order never moves again; each history is a chain of allowed steps from
    PENDING that ends at the current status; the stock invariant holds and ``reserved`` is
    what the open orders hold."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.stock = StockLevels.initial(20)
        self.status: dict[int, S] = {}
        self.quantity: dict[int, int] = {}
        self.history: dict[int, list[S]] = {}

    @rule(target=orders, quantity=st.integers(1, 6))
    def place(self, quantity: int) -> int:
        try:
            self.stock = self.stock.reserve(quantity)
        except InsufficientStock:
            return multiple()  # type: ignore[return-value]
        order = len(self.status)
        self.status[order] = S.PENDING
        self.quantity[order] = quantity
        self.history[order] = [S.PENDING]
        return order

    @rule(order=orders, requested=st.sampled_from(S), actor=st.sampled_from(Actor))
    def move(self, order: int, requested: S, actor: Actor) -> None:
        current = self.status[order]
        try:
            check_transition(current, requested, actor=actor)
        except InvalidTransition as refused:
            assert requested not in allowed_next(current, actor)
            assert refused.extensions()["current"] == current.value
            return
        assert requested in allowed_next(current, actor)
        assert not is_terminal(current)
        if requested is S.PICKED_UP:
            self.stock = self.stock.confirm(self.quantity[order])
        elif requested in (S.CANCELLED, S.EXPIRED):
            self.stock = self.stock.release(self.quantity[order])
        self.status[order] = requested
        self.history[order].append(requested)

    @rule(quantity=st.integers(1, 10))
    def restock(self, quantity: int) -> None:
        self.stock = self.stock.restock(quantity)

    @invariant()
    def histories_are_chains_of_allowed_steps(self) -> None:
        for order, history in self.history.items():
            assert history[0] is S.PENDING
            assert history[-1] is self.status[order]
            for before, after in itertools.pairwise(history):
                assert after in TRANSITIONS[before]
            assert not any(is_terminal(status) for status in history[:-1])

    @invariant()
    def reserved_stock_is_what_open_orders_hold(self) -> None:
        held = sum(
            quantity
            for order, quantity in self.quantity.items()
            if not is_terminal(self.status[order])
        )
        assert self.stock.reserved == held
        assert self.stock.on_hand == self.stock.available + self.stock.reserved


OrderLifeCycles.TestCase.settings = settings(max_examples=100, stateful_step_count=30)
test_order_life_cycles_keep_the_rules_the_history_and_the_stock_straight = OrderLifeCycles.TestCase
