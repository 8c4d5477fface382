"""Property-based tests of the whole API from its own OpenAPI schema (schemathesis).

The app runs under uvicorn on a real port, on real PostgreSQL, Redis and the AWS emulator,
seeded with the sample menu and holding an admin account. Two runs, both derandomized:

- every operation on its own gets generated requests, valid and invalid, anonymously;
- a stateful run chains operations along the schema's links (checkout -> status, details,
  the staff view and status changes; staff accounts; inventory) as a signed-in admin, with
  the session cookie and the CSRF header the staff pages send.

No answer may be a 5xx, and every answer must match what the schema documents (status code,
content type, headers, body).
"""

from __future__ import annotations

import asyncio
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, FlakyStrategyDefinition
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pickup.api.app import create_app
from pickup.provisioning import bootstrap
from pickup.seed.loader import seed
from pickup.settings import Settings
from pickup.staff.auth import CSRF_HEADER, SESSION_COOKIE
from tests.conftest import delete_aws_resources, fresh_database
from tests.helpers import served_in_thread

CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)


@pytest.fixture(scope="module")
async def schema_database_url(services: Any) -> AsyncIterator[str]:
    """A database of this module's own: the fuzzer's orders, keys and slots never meet the
    rest of the session's (pickup slots and idempotency keys are shop-wide tables)."""
    async with fresh_database(services) as url:
        yield url


@pytest.fixture(scope="module")
def live_api(services: Any, schema_database_url: str) -> Iterator[str]:
    from tests.conftest import load_settings_for

    database_url = schema_database_url

    settings: Settings = load_settings_for(
        services,
        database_url=database_url,
        opening_hours="mon-sun 00:00-24:00",
        rate_limit_cart_per_minute=100_000,
        rate_limit_checkout_per_minute=100_000,
        rate_limit_login_per_minute=10_000,
        slot_capacity=10_000,
    )
    asyncio.run(bootstrap(settings))
    asyncio.run(seed(settings, reset=True))
    asyncio.run(create_admin(settings))
    with served_in_thread(create_app(settings)) as base:
        yield base
    delete_aws_resources(services.aws_endpoint, settings.resource_prefix)


ADMIN_EMAIL = "fuzz-admin@shop.example"
ADMIN_PASSWORD = "correct horse battery staple"


async def create_admin(settings: Settings) -> None:
    from pickup.runtime import Resources
    from pickup.staff.service import create_staff

    async with Resources.open(settings) as resources, resources.sessions.begin() as db:
        await create_staff(
            db, email=ADMIN_EMAIL, display_name="Fuzz", password=ADMIN_PASSWORD, role="admin"
        )


PRODUCTS = ["espresso", "flat-white", "butter-croissant", "mocha", "cold-brew", "baguette"]


def make_valid_checkout(body: dict[str, Any], product_id: str) -> None:
    """Turn a generated checkout body into one the shop accepts: one real product and a
    plausible customer. The server checks names, phones and notes more strictly than the
    schema can say, so a generated body is rarely accepted as it is, and which ones are
    depends on the strings Hypothesis draws: it mixes in constants from every local module
    already imported, so the same derandomized test draws other bodies in the full suite
    than on its own."""
    body["items"] = [{"product_id": product_id, "quantity": 1}]
    body["customer"] = {"name": "Fuzz Customer", "email": "fuzz@example.com"}
    for optional in ("pickup_time", "special_instructions"):
        body.pop(optional, None)


def with_real_products(case: Any) -> st.SearchStrategy[Any]:
    """Half the time, point generated product ids at products that exist, and make the
    checkout a valid one, so the happy paths (an item added, an order placed) get exercised
    and not only the refusals."""

    def substitute(choice: tuple[bool, str]) -> Any:
        use_real, product_id = choice
        body = case.body
        if use_real and isinstance(body, dict):
            if case.operation.label == "POST /api/orders":
                make_valid_checkout(body, product_id)
            if isinstance(body.get("product_id"), str):
                body["product_id"] = product_id
            for item in body.get("items") or []:
                if isinstance(item, dict) and isinstance(item.get("product_id"), str):
                    item["product_id"] = product_id
                    item["quantity"] = 1
            body.pop("pickup_time", None)
        return case

    return st.tuples(st.booleans(), st.sampled_from(PRODUCTS)).map(substitute)


def checkout_outcome(response: Any) -> str:
    """A checkout's status, with the problem type and detail of a refusal."""
    if response.status_code < 400:
        return str(response.status_code)
    try:
        problem = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:120]!r}"
    kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
    return f"{response.status_code} {kind}: {str(problem.get('detail'))[:120]}"


def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    live_api: str,
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api}/api/openapi.json")
    failures: dict[str, str] = {}
    tested = []
    statuses: list[int] = []
    checkouts: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)

        @given(case=operation.as_strategy().flatmap(with_real_products))
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            response = case.call_and_validate(checks=CHECKS)
            statuses.append(response.status_code)
            if case.operation.label == "POST /api/orders":
                checkouts.append(checkout_outcome(response))

        try:
            exercise()
        except Exception as error:  # collect every operation's failure, not just the first
            failures[operation.label] = str(error)[:2000]
    assert len(statuses) > 10 * len(tested)  # the generator really exercised each operation
    # Happy paths and refusals both reached, a generated checkout placing an order among them.
    assert {200, 202, 422} <= set(statuses)
    assert "POST /api/orders" in tested
    assert "202" in checkouts, Counter(checkouts).most_common()
    assert "POST /api/cart/add" in tested
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


# Streams never end, and signing out or in mid-run would only test that the session ends.
STATEFUL_EXCLUDED = r"(/events$|^/api/staff/(login|logout)$)"
ORDER_LIFE_CYCLE = r"^/api/(orders|admin/orders(/\{order_id\}(/status)?)?)$"


def point_at_real_products(body: Any, seed_text: str) -> None:
    """Make about half the generated cart lines and stock changes name real products, and
    half the checkouts valid ones (chosen from the body itself, so the run stays
    deterministic): the other half, and the stateless test above, fuzz them freely."""
    if not isinstance(body, dict):
        return
    digest = sum(map(ord, seed_text))
    if digest % 2:
        return
    product_id = PRODUCTS[digest % len(PRODUCTS)]
    if isinstance(body.get("product_id"), str):
        body["product_id"] = product_id
    if "items" in body and "customer" in body:  # a checkout: make this half a valid one
        make_valid_checkout(body, product_id)


def test_a_stateful_run_over_the_whole_api_as_staff_finds_no_server_error(
    live_api: str,
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api}/api/openapi.json").exclude(
        path_regex=STATEFUL_EXCLUDED
    )
    seen: dict[str, set[int]] = {}
    rejected: list[str] = []
    failures: dict[str, str] = {}
    calls: list[str] = []

    class Hooks:
        """Sign-in, the CSRF header and the checks, shared by the state machines below."""

        def setup(self) -> None:
            # Each scenario signs in afresh: an earlier one may have ended its session (a
            # password change ends every session of that account).
            signed_in = httpx.post(
                f"{live_api}/api/staff/login",
                json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            )
            assert signed_in.status_code == 200, signed_in.text
            self.session_id = signed_in.cookies[SESSION_COOKIE]
            self.csrf_token = signed_in.json()["csrf_token"]

        def before_call(self, case: Any) -> None:
            point_at_real_products(case.body, repr(case.body) + repr(case.path_parameters))

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {
                "headers": {CSRF_HEADER: self.csrf_token},
                "cookies": {SESSION_COOKIE: self.session_id},
            }

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            calls.append(case.operation.label)
            if case.operation.label == "POST /api/orders" and response.status_code == 422:
                rejected.append(response.text[:300] + " <- " + repr(case.body)[:300])
            # Collected, not raised: the server's state moves on, so Hypothesis could not
            # replay a failing scenario faithfully; the failure's own report says it all.
            try:
                case.validate_response(response, checks=list(CHECKS), transport_kwargs=kwargs)
            except Exception as error:
                failures.setdefault(case.operation.label, str(error)[:3000])

    def run_rounds(workflow: Any, seeds: range) -> int:
        """Rounds with fixed seeds; returns how many were interrupted.

        The server keeps what earlier scenarios did, so what a link can follow differs
        between runs of the same choices; Hypothesis then stops a round as "flaky"
        (schemathesis' own runner restarts the same way). Failures are already collected
        above, so an interrupted round loses no finding, only steps."""
        interrupted = 0
        for round_seed in seeds:
            try:
                hypothesis.seed(round_seed)(workflow).run(
                    settings=settings(
                        max_examples=15,
                        stateful_step_count=8,
                        deadline=None,
                        database=None,
                        suppress_health_check=list(HealthCheck),
                        phases=[Phase.explicit, Phase.generate],
                    )
                )
            except (Flaky, FlakyStrategyDefinition):
                interrupted += 1
            except AssertionError as error:
                where = "".join(traceback.format_tb(error.__traceback__))
                if "hypothesis/internal/conjecture" not in where:  # an inconsistent replay only
                    raise
                interrupted += 1
        return interrupted

    # The whole API; then the order life cycle alone (checkout, the staff list and read, status
    # changes), where the links from a staff read to the status change (the order's next
    # status, its ETag as If-Match) get followed often enough to move orders on.
    class Workflow(Hooks, schema.as_state_machine()):  # type: ignore[misc]
        pass

    class OrderWorkflow(  # type: ignore[misc]
        Hooks, schema.include(path_regex=ORDER_LIFE_CYCLE).as_state_machine()
    ):
        pass

    interrupted = run_rounds(Workflow, range(3))
    interrupted += run_rounds(OrderWorkflow, range(3))
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    steps = len(calls)
    report = f"{steps} steps, {interrupted} rounds interrupted: {seen}"
    print(report)  # shown with -s, and in the failure output
    # The customer side and the staff side took part ...
    assert {
        "GET /api/menu",
        "GET /api/menu/{product_id}",
        "POST /api/orders",
        "GET /api/admin/orders",
        "POST /api/admin/staff",
        "PATCH /api/admin/staff/{user_id}",
    } <= set(seen), report
    assert any(label.startswith("POST /api/admin/inventory/") for label in seen), report
    # ... and links were followed: orders placed, then read and moved along by staff.
    assert 202 in seen["POST /api/orders"], rejected[:10]
    followed = {
        label: statuses
        for label, statuses in seen.items()
        if "{order_id}" in label and statuses & {200, 409}
    }
    assert len(followed) >= 2, report
    # A staff read's links carry the order's next status and its ETag (as If-Match): status
    # changes get through, not only their refusals (428 without a version, 412, 409).
    assert 200 in seen["PUT /api/admin/orders/{order_id}/status"], report
    assert steps >= 100, report
