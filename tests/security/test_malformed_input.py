"""Inputs the API fuzzer found answered with a 500 or an undocumented status, now refused as
documented 422 problems: NUL and other control characters in text that reaches PostgreSQL
(which cannot store NUL), and a request body that is not UTF-8."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.staff_helpers import Office, assert_problem


@pytest.fixture
def queues_and_topics() -> bool:
    return False


async def test_control_characters_in_a_sign_in_email_are_a_validation_problem(
    customer: httpx.AsyncClient,
) -> None:
    for email in ("ada\x00@shop.example", "ada@shop.example\r\n"):
        answer = await customer.post("/api/staff/login", json={"email": email, "password": "x"})
        assert_problem(answer, 422, "validation-error")


async def test_control_characters_in_the_order_search_are_a_validation_problem(
    admin: httpx.AsyncClient,
) -> None:
    assert_problem(
        await admin.get("/api/admin/orders", params={"q": "ab\x00"}), 422, "validation-error"
    )
    assert (await admin.get("/api/admin/orders", params={"q": "Grace"})).status_code == 200


async def test_a_body_that_is_not_utf8_is_a_validation_problem(
    office_app: Office, admin: httpx.AsyncClient
) -> None:
    garbage = b'{"status": "\xff\xfe"}'
    for method, path in (
        ("PUT", "/api/admin/orders/8d6c1f5e-2f0b-4f43-9a55-0d7e61c2d2a1/status"),
        ("POST", "/api/cart/add"),
    ):
        answer = await admin.request(
            method, path, content=garbage, headers={"Content-Type": "application/json"}
        )
        body = assert_problem(answer, 422, "validation-error")
        assert body["errors"] == [{"field": "body", "message": "not UTF-8 text"}]
