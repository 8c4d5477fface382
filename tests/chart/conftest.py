"""Fixtures of the chart tests: the tools (fetched by scripts/chart_tools.py) and rendered charts.

Every ``ci/*-values.yaml`` scenario is rendered once per session. The tests skip, saying why,
only when the tools cannot be fetched; with them in place everything here runs offline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pickup"
CI_VALUES = CHART / "ci"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in CI_VALUES.glob("*-values.yaml"))
RELEASE = "pickup"
NAMESPACE = "pickup"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"}


def _chart_tools_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "chart_tools", ROOT / "scripts" / "chart_tools.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("chart_tools", module)
    spec.loader.exec_module(module)
    return module


chart_tools = _chart_tools_module()


class RenderError(AssertionError):
    """helm template failed; the message is helm's."""


@dataclass
class Chart:
    """Runs the fetched helm (and friends) against charts/pickup."""

    tools: Any
    _cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _validated: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, check=False, cwd=ROOT
        )

    def template_text(
        self,
        values: Iterable[Path] = (),
        sets: Iterable[str] = (),
        set_strings: Iterable[str] = (),
        include_crds: bool = True,
    ) -> str:
        command = [self.tools.helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        if include_crds:
            command.append("--include-crds")
        for path in values:
            command += ["--values", str(path)]
        for item in sets:
            command += ["--set", item]
        for item in set_strings:
            command += ["--set-string", item]
        result = self.run(*command)
        if result.returncode != 0:
            raise RenderError(result.stderr.strip())
        return result.stdout

    def template(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.template_text(*args, **kwargs)) if doc]

    def scenario_text(self, scenario: str) -> str:
        return self.template_text([values_file(scenario)])

    def validate(self, scenario: str) -> subprocess.CompletedProcess[str]:
        """kubernetes-validate (1.33, strict) over the scenario's rendered manifests."""
        if scenario not in self._validated:
            self._validated[scenario] = self.run(
                self.tools.kubernetes_validate, "-k", "1.33.0", "--strict", "--quiet", "-",
                stdin=self.scenario_text(scenario),
            )  # fmt: skip
        return self._validated[scenario]

    def scenario(self, scenario: str) -> list[dict[str, Any]]:
        if scenario not in self._cache:
            self._cache[scenario] = self.template([values_file(scenario)])
        return self._cache[scenario]


def values_file(scenario: str) -> Path:
    return CI_VALUES / f"{scenario}-values.yaml"


@pytest.fixture(scope="session")
def tools() -> Any:
    try:
        return chart_tools.ensure_tools()
    except chart_tools.ToolsUnavailable as error:
        pytest.skip(f"chart tools cannot be fetched (helm, kubernetes-validate, ...): {error}")


@pytest.fixture(scope="session")
def chart(tools: Any) -> Chart:
    return Chart(tools)


@pytest.fixture(scope="session")
def checkov(tools: Any) -> str:
    try:
        found = chart_tools.ensure_tools(with_checkov=True)
    except chart_tools.ToolsUnavailable as error:
        pytest.skip(f"checkov cannot be fetched: {error}")
    assert found.checkov
    return found.checkov


@pytest.fixture(scope="session", params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def rendered(chart: Chart, scenario: str) -> list[dict[str, Any]]:
    return chart.scenario(scenario)


def pod_specs(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload."""
    for doc in documents:
        kind = doc.get("kind")
        if kind not in WORKLOAD_KINDS:
            continue
        spec = doc["spec"] if kind == "Pod" else doc["spec"]["template"]["spec"]
        yield f"{kind}/{doc['metadata']['name']}", spec


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc.get("kind") == kind]


def by_name(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in of_kind(documents, kind):
        if doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} named {name}")


def in_tools_python(tools: Any, code: str, payload: Any) -> Any:
    """Run ``code`` in the tools venv (jsonschema, PyYAML): JSON in on stdin, JSON out."""
    result = subprocess.run(
        [tools.python, "-c", code],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
