"""Example resources, valid and invalid, against the CRD's own openAPIV3Schema (jsonschema).

jsonschema runs in the chart tools' virtualenv (tests/chart/conftest.py); the CEL rules,
which only an API server evaluates, are checked through their Python equivalents.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pickup.core.inventory import ProductWithInventory
from pickup_operator import builders
from pickup_operator.builders import Level, ThresholdSpec
from tests.chart.conftest import CHART, in_tools_python
from tests.chart.conftest import tools as tools

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((CHART / "crds" / "inventorythreshold.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC_SCHEMA = SCHEMA["properties"]["spec"]
EXAMPLES = list(
    yaml.safe_load_all((ROOT / "operators" / "examples" / "inventorythresholds.yaml").read_text())
)
BASE = EXAMPLES[0]

VALIDATE = """
import json, sys
from jsonschema import Draft4Validator
payload = json.load(sys.stdin)
validator = Draft4Validator(payload["schema"])
print(json.dumps({name: [e.message for e in validator.iter_errors(doc)]
                  for name, doc in payload["documents"].items()}))
"""


def _spec(**changes: Any) -> dict[str, Any]:
    resource = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            resource["spec"].pop(key, None)
        else:
            resource["spec"][key] = value
    return resource


def _with_status() -> dict[str, Any]:
    """An example as the operator leaves it: every status field it writes."""
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    product = ProductWithInventory(
        id="croissant", name="Croissant", price_cents=250, on_hand=5, reserved=2, available=3
    )
    status: dict[str, Any] = builders.stock_status(product, Level.CRITICAL, generation=1)
    status.update(builders.alert_status({Level.LOW: now}, Level.CRITICAL, now))
    status["conditions"] = builders.merge_conditions(
        None, builders.synced_conditions(product, Level.CRITICAL), now=now, generation=1
    )
    return {**copy.deepcopy(BASE), "status": status}


INVALID = {
    "critical above low": _spec(lowStock=5, critical=9),
    "negative lowStock": _spec(lowStock=-1),
    "negative critical": _spec(critical=-2),
    "missing productId": _spec(productId=None),
    "productId not a product id": _spec(productId="Croissant Large"),
    "negative cooldown": _spec(cooldownSeconds=-5),
    "unknown level in the status": {
        **_with_status(),
        "status": {**_with_status()["status"], "level": "low"},
    },
}
# What the schema alone accepts and only the CEL rule refuses.
CEL_ONLY = {"critical above low", "critical equal to low"}


def cel_critical_below_low(spec: dict[str, Any]) -> bool:
    """``self.critical < self.lowStock``, the CRD's CEL rule on spec."""
    return spec["critical"] < spec["lowStock"]


@pytest.fixture(scope="module")
def errors(tools: Any) -> dict[str, list[str]]:
    documents = {f"example {i}": doc for i, doc in enumerate(EXAMPLES)}
    documents["with the operator's status"] = _with_status()
    documents["critical equal to low"] = _spec(lowStock=5, critical=5)
    documents.update(INVALID)
    return in_tools_python(tools, VALIDATE, {"schema": SCHEMA, "documents": documents})


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_the_shipped_examples_are_valid_and_the_operator_can_apply_them(
    errors: dict[str, list[str]], index: int
) -> None:
    assert errors[f"example {index}"] == []
    spec = EXAMPLES[index]["spec"]
    assert cel_critical_below_low(spec)
    assert ThresholdSpec.from_spec(spec).product_id == spec["productId"]


def test_the_status_the_operator_writes_fits_the_status_schema(
    errors: dict[str, list[str]],
) -> None:
    assert errors["with the operator's status"] == []


@pytest.mark.parametrize("case", sorted(set(INVALID) - CEL_ONLY))
def test_the_schema_rejects_an_invalid_resource(errors: dict[str, list[str]], case: str) -> None:
    assert errors[case], f"{case} was accepted"


@pytest.mark.parametrize("case", sorted(CEL_ONLY))
def test_critical_at_or_above_low_is_left_to_the_cel_rule_which_rejects_it(
    errors: dict[str, list[str]], case: str
) -> None:
    spec = INVALID.get(case) or _spec(lowStock=5, critical=5)
    assert errors[case] == []
    assert {
        "rule": "self.critical < self.lowStock",
        "message": "critical must be below lowStock",
    } in SPEC_SCHEMA["x-kubernetes-validations"]
    assert not cel_critical_below_low(spec["spec"])
    with pytest.raises(builders.InvalidSpec):  # and the operator refuses it too
        ThresholdSpec.from_spec(spec["spec"])


def test_the_product_id_is_immutable() -> None:
    rules = SPEC_SCHEMA["properties"]["productId"]["x-kubernetes-validations"]
    assert {"rule": "self == oldSelf", "message": "productId is immutable"} in rules


def test_the_crd_defaults_are_the_operators_defaults() -> None:
    properties = SPEC_SCHEMA["properties"]
    fallback = ThresholdSpec.from_spec({"productId": "bun", "lowStock": 5, "critical": 1})
    assert properties["reorderQuantity"]["default"] == fallback.reorder_quantity
    assert properties["cooldownSeconds"]["default"] == fallback.cooldown_seconds


def test_the_crd_product_id_pattern_accepts_exactly_the_catalogues_ids() -> None:
    schema = SPEC_SCHEMA["properties"]["productId"]
    assert schema["maxLength"] == 64
    assert schema["pattern"] == "^[a-z0-9][a-z0-9-]*$"


def test_every_level_the_operator_sets_is_in_the_crd_enum() -> None:
    assert SCHEMA["properties"]["status"]["properties"]["level"]["enum"] == [
        str(level) for level in Level
    ]
