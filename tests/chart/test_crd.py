"""The InventoryThreshold CRD, and example resources checked against its own openAPIV3Schema.

CEL rules cannot be evaluated offline: the rule's text is asserted, and the same condition is
checked in Python on the examples.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, in_tools_python

CRD = yaml.safe_load((CHART / "crds" / "inventorythreshold.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]

VALID = {
    "apiVersion": "pickup.dev/v1alpha1",
    "kind": "InventoryThreshold",
    "metadata": {"name": "croissant"},
    "spec": {
        "productId": "croissant",
        "lowStock": 10,
        "critical": 3,
        "reorderQuantity": 48,
        "cooldownSeconds": 1800,
        "notify": {
            "emails": ["kitchen@example.com"],
            "phones": ["+447700900123"],
            "snsTopicArn": "arn:aws:sns:eu-west-2:123456789012:pickup-prod-inventory-alerts",
        },
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    resource = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    target = resource
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return resource


_DELETE = object()

INVALID_BY_SCHEMA = {
    "a missing productId": _with("spec.productId", _DELETE),
    "an empty productId": _with("spec.productId", ""),
    "a negative lowStock": _with("spec.lowStock", -1),
    "a negative critical": _with("spec.critical", -5),
    "a negative reorderQuantity": _with("spec.reorderQuantity", -1),
    "a negative cooldown": _with("spec.cooldownSeconds", -60),
    "a fractional lowStock": _with("spec.lowStock", 2.5),
    "a malformed email": _with("spec.notify.emails", ["kitchen"]),
    "a phone not in E.164": _with("spec.notify.phones", ["07700 900123"]),
    "a malformed topic ARN": _with("spec.notify.snsTopicArn", "pickup-alerts"),
    "a missing spec": {k: v for k, v in VALID.items() if k != "spec"},
}

VALIDATE = """
import json, sys
from jsonschema import Draft4Validator
payload = json.load(sys.stdin)
validator = Draft4Validator(payload["schema"])
print(json.dumps({name: [e.message for e in validator.iter_errors(doc)]
                  for name, doc in payload["documents"].items()}))
"""


def cel_critical_below_low(spec: dict[str, Any]) -> bool:
    """The CRD's CEL rule ``self.critical < self.lowStock``, in Python."""
    return spec["critical"] < spec["lowStock"]


@pytest.fixture(scope="module")
def schema_errors(tools: Any) -> dict[str, list[str]]:
    documents = {"valid": VALID, **INVALID_BY_SCHEMA}
    documents["critical above low"] = _with("spec.critical", 20)
    documents["critical equal to low"] = _with("spec.critical", 10)
    documents["only the required fields"] = {
        **VALID,
        "spec": {"productId": "bun", "lowStock": 5, "critical": 0},
    }
    return in_tools_python(tools, VALIDATE, {"schema": SCHEMA, "documents": documents})


def test_the_crd_defines_inventory_thresholds_in_pickup_dev() -> None:
    assert CRD["metadata"]["name"] == "inventorythresholds.pickup.dev"
    assert CRD["spec"]["group"] == "pickup.dev"
    assert CRD["spec"]["names"]["kind"] == "InventoryThreshold"
    assert CRD["spec"]["names"]["shortNames"] == ["ithr"]
    assert VERSION["name"] == "v1alpha1" and VERSION["served"] and VERSION["storage"]


def test_the_crd_has_a_status_subresource_and_the_printer_columns() -> None:
    assert VERSION["subresources"] == {"status": {}}
    columns = [column["name"] for column in VERSION["additionalPrinterColumns"]]
    assert columns == ["Product", "Available", "Level", "Age"]


def test_the_crd_carries_the_cel_rule_that_critical_is_below_low_stock() -> None:
    rules = SCHEMA["properties"]["spec"]["x-kubernetes-validations"]
    assert {
        "rule": "self.critical < self.lowStock",
        "message": "critical must be below lowStock",
    } in rules


def test_a_complete_threshold_is_valid(schema_errors: dict[str, list[str]]) -> None:
    assert schema_errors["valid"] == []
    assert cel_critical_below_low(VALID["spec"])


def test_a_threshold_with_only_the_required_fields_is_valid(
    schema_errors: dict[str, list[str]],
) -> None:
    assert schema_errors["only the required fields"] == []


@pytest.mark.parametrize("case", sorted(INVALID_BY_SCHEMA))
def test_the_schema_rejects_an_invalid_threshold(
    schema_errors: dict[str, list[str]], case: str
) -> None:
    assert schema_errors[case], f"{case} was accepted"


@pytest.mark.parametrize("case", ["critical above low", "critical equal to low"])
def test_critical_at_or_above_low_stock_passes_the_schema_but_fails_the_cel_rule(
    schema_errors: dict[str, list[str]], case: str
) -> None:
    critical = 20 if case == "critical above low" else 10
    assert schema_errors[case] == []
    assert not cel_critical_below_low(_with("spec.critical", critical)["spec"])


def test_the_crd_is_valid_kubernetes_1_33(chart: Any) -> None:
    result = chart.run(
        chart.tools.kubernetes_validate,
        "-k",
        "1.33.0",
        "--strict",
        str(CHART / "crds" / "inventorythreshold.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
