"""values.yaml documents every key, and values.schema.json closes every object."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.chart.conftest import CHART, Chart, of_kind

VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
PARAMS = set(re.findall(r"^\s*## @param (\S+)", VALUES_TEXT, flags=re.MULTILINE))


def _leaves(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, f"{path}.{key}" if path else key)
    else:
        yield path


def _exists(path: str) -> bool:
    node: Any = VALUES
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def test_every_values_key_is_documented_with_a_param() -> None:
    undocumented = []
    for leaf in _leaves(VALUES):
        parts = leaf.split(".")
        documented = any(".".join(parts[:n]) in PARAMS for n in range(1, len(parts) + 1))
        if not documented:
            undocumented.append(leaf)
    assert not undocumented, undocumented


def test_every_param_names_a_key_that_exists() -> None:
    missing = sorted(param for param in PARAMS if not _exists(param))
    assert not missing, missing


def _objects(schema: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if "properties" in schema:
            yield path, schema
        for key, child in schema.items():
            yield from _objects(child, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, child in enumerate(schema):
            yield from _objects(child, f"{path}/{index}")


def test_every_object_in_the_values_schema_forbids_unknown_keys() -> None:
    open_objects = [
        path for path, node in _objects(SCHEMA) if node.get("additionalProperties") is not False
    ]
    assert not open_objects, open_objects


def test_every_top_level_value_is_required_by_the_schema() -> None:
    assert set(SCHEMA["required"]) == set(VALUES)
    assert SCHEMA["additionalProperties"] is False


def test_every_component_block_has_the_shape_of_the_default_block() -> None:
    allowed = set(SCHEMA["definitions"]["componentOverride"]["properties"])
    assert set(VALUES["default"]) == allowed
    for name, block in VALUES["components"].items():
        assert set(block) <= allowed, name


def test_the_image_is_pinned_by_a_tag_and_never_latest() -> None:
    assert VALUES["image"]["tag"] != "latest"
    chart_yaml = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart_yaml["appVersion"])
    for scenario in (CHART / "ci").glob("*-values.yaml"):
        tag = ((yaml.safe_load(scenario.read_text()) or {}).get("image") or {}).get("tag")
        assert tag != "latest", scenario.name


def test_the_grafana_dashboard_is_valid_json(chart: Chart) -> None:
    documents = chart.template(sets=["dashboards.enabled=true"])
    dashboards = [
        doc for doc in of_kind(documents, "ConfigMap") if "dashboard" in doc["metadata"]["name"]
    ]
    assert dashboards
    for doc in dashboards:
        for content in doc["data"].values():
            dashboard = json.loads(content)
            assert dashboard["uid"] and dashboard["panels"]
