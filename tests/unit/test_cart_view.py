"""The cart view is built as data and the add serialises that data as it is: it must be
exactly CartView's JSON (the shape the API documents and the other routes validate)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import to_json

from pickup.cart.schemas import CartView
from pickup.cart.service import KnownLines, _known_lines, _view
from pickup.core.inventory import ProductWithInventory
from tests.helpers import offline_settings, product

RESOURCES = SimpleNamespace(settings=offline_settings(currency="EUR"))


def _as_documented(data: dict[str, Any]) -> CartView:
    """The data must be CartView's JSON byte for byte: a key too many, too few or of another
    type changes the bytes (validation drops unknown keys, fills defaults, coerces)."""
    model = CartView.model_validate(data, strict=True)
    assert to_json(data) == model.model_dump_json().encode()
    return model


def test_every_kind_of_line_is_cart_views_json() -> None:
    products = {
        "bun": product("bun", 40),
        "scone": product("scone", 3),  # low stock: the number left is shown
        "tart": product("tart", 0),  # sold out
        "pie": product("pie", 4),  # fewer left than in the cart
        "roll": product("roll", 50, max_per_order=2),  # more than one order may hold
        "flan": product("flan", 9, is_available=False),  # switched off by staff
    }
    lines = {"bun": 2, "scone": 1, "tart": 1, "pie": 6, "roll": 3, "flan": 1, "gone": 2, "zero": 0}
    view = _as_documented(_view(RESOURCES, lines, products))

    assert [line.product_id for line in view.lines] == [
        "bun",
        "flan",
        "gone",  # an unknown product is named by its id
        "pie",
        "roll",
        "scone",
        "tart",
    ]
    by_id = {line.product_id: line for line in view.lines}
    assert by_id["bun"].issue is None and by_id["bun"].fulfillable
    assert by_id["bun"].stock.status == "in_stock" and by_id["bun"].stock.available is None
    assert by_id["scone"].stock.status == "low_stock" and by_id["scone"].stock.available == 3
    assert {pid: line.issue.code for pid, line in by_id.items() if line.issue} == {
        "flan": "unavailable",
        "gone": "unknown_product",
        "pie": "insufficient_stock",
        "roll": "over_limit",
        "tart": "out_of_stock",
    }
    assert by_id["pie"].issue is not None and by_id["pie"].issue.max_quantity == 4
    assert by_id["flan"].stock.status == "out_of_stock"
    assert by_id["gone"].unit_price_cents is None and by_id["gone"].line_total_cents is None
    assert view.totals.item_count == 16 and view.totals.line_count == 7
    assert view.totals.subtotal_cents == 300 * (2 + 1 + 1 + 6 + 3 + 1)
    assert view.totals.currency == "EUR"
    assert not view.checkout_ready


def test_an_empty_cart_is_cart_views_json() -> None:
    view = _as_documented(_view(RESOURCES, {}, {}))
    assert view.lines == [] and not view.checkout_ready and view.totals.item_count == 0


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.tuples(
            st.integers(0, 30),  # in the cart
            st.integers(0, 30),  # available
            st.integers(1, 10),  # max per order
            st.booleans(),  # switched on
            st.booleans(),  # still on the menu
        ),
        max_size=5,
    )
)
def test_any_cart_is_cart_views_json(cart: dict[str, tuple[int, int, int, bool, bool]]) -> None:
    products: dict[str, ProductWithInventory] = {
        pid: product(pid, left, max_per_order=per_order, is_available=on)
        for pid, (_, left, per_order, on, listed) in cart.items()
        if listed
    }
    lines = {pid: quantity for pid, (quantity, *_) in cart.items()}
    view = _as_documented(_view(RESOURCES, lines, products))
    assert view.checkout_ready == (
        any(quantity > 0 for quantity in lines.values())
        and all(line.fulfillable for line in view.lines)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "c", "d", "e"]),
            st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(1, 10), st.booleans()),
            max_size=5,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_views_of_remembered_lines_are_the_views_built_anew(
    carts: list[dict[str, tuple[int, int, int, bool]]],
) -> None:
    # One menu copy serving carts one after another, as the add's memo of line views does.
    products = {
        pid: product(pid, left, max_per_order=per_order, is_available=on)
        for cart in carts
        for pid, (_, left, per_order, on) in cart.items()
    }
    known = KnownLines(products)
    for cart in carts:
        lines = {pid: quantity for pid, (quantity, *_) in cart.items()}
        remembered = _view(RESOURCES, lines, products, known)
        assert to_json(remembered) == to_json(_view(RESOURCES, lines, products))
        _as_documented(remembered)


def test_a_new_copy_of_the_menu_gets_line_views_of_its_own() -> None:
    before = {"bun": product("bun", 40)}
    after = {"bun": product("bun", 3, price_cents=450)}  # repriced, and now low on stock
    assert _known_lines(before) is _known_lines(before)
    old = _view(RESOURCES, {"bun": 2}, before, _known_lines(before))
    new = _view(RESOURCES, {"bun": 2}, after, _known_lines(after))

    assert old["lines"][0]["unit_price_cents"] == 300
    assert new["lines"][0]["unit_price_cents"] == 450
    assert new["lines"][0]["stock"] == {"status": "low_stock", "available": 3}
    assert new["totals"]["subtotal_cents"] == 900


def test_the_memo_of_line_views_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KnownLines, "LIMIT", 3)
    known = KnownLines({"bun": product("bun", 40)})
    for quantity in range(1, 8):
        view = _view(RESOURCES, {"bun": quantity}, known.products, known)
        assert view["totals"]["item_count"] == quantity
        assert len(known._entries) <= 3
