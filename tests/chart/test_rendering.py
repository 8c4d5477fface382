"""The chart lints, renders for every scenario, and every manifest is valid Kubernetes 1.33."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import (
    CHART,
    RELEASE,
    SCENARIOS,
    Chart,
    RenderError,
    by_name,
    of_kind,
    values_file,
)

COMPONENTS = ["api", "notifier", "operator", "worker"]


def test_the_chart_lints_strictly_with_its_defaults(chart: Chart) -> None:
    result = chart.run(chart.tools.helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_chart_lints_strictly_with_each_ci_values_file(chart: Chart, scenario: str) -> None:
    result = chart.run(
        chart.tools.helm, "lint", "--strict", str(CHART), "--values", str(values_file(scenario))
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ci_scenario_renders_a_deployment_per_enabled_component(
    rendered: list[dict[str, Any]], scenario: str
) -> None:
    names = {doc["metadata"]["name"] for doc in of_kind(rendered, "Deployment")}
    expected = {"api"} if scenario == "minimal" else set(COMPONENTS)
    assert {f"{RELEASE}-{c}" for c in expected} <= names


def test_every_rendered_manifest_is_valid_kubernetes_1_33(chart: Chart, scenario: str) -> None:
    result = chart.validate(scenario)
    failures = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    assert result.returncode == 0 and not failures, "\n".join(failures) or result.stderr


def test_only_custom_resources_lack_a_kubernetes_schema(chart: Chart, scenario: str) -> None:
    result = chart.validate(scenario)
    unknown = [line for line in result.stdout.splitlines() if "Couldn't find schema" in line]
    allowed = ("keda.sh/", "monitoring.coreos.com/")
    assert all(any(group in line for group in allowed) for line in unknown), unknown


def test_the_policy_scan_finds_nothing_beyond_the_documented_skips(
    chart: Chart, checkov: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for scenario in ("default", "eks"):
            path = Path(folder) / f"{scenario}.yaml"
            path.write_text(chart.template_text([values_file(scenario)], include_crds=False))
            files += ["--file", str(path)]
        result = subprocess.run(
            [checkov, "--config-file", str(CHART / ".checkov.yaml"), "--output", "json", *files],
            capture_output=True,
            text=True,
            check=False,
        )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{check['check_id']} {check['check_name']}: {check['resource']}"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


def test_the_values_schema_rejects_an_unknown_key(chart: Chart) -> None:
    with pytest.raises(RenderError, match="additional properties 'replica' not allowed"):
        chart.template(sets=["components.api.replica=3"])


def test_the_values_schema_rejects_a_latest_image_tag(chart: Chart) -> None:
    with pytest.raises(RenderError, match="image/tag"):
        chart.template(sets=["image.tag=latest"])


def test_static_aws_keys_are_refused_in_production(chart: Chart) -> None:
    with pytest.raises(RenderError, match="static AWS keys are refused"):
        chart.template(sets=["secrets.awsAccessKeyId=AKIAEXAMPLE"])


def test_development_services_are_refused_in_production(chart: Chart) -> None:
    with pytest.raises(RenderError, match=r"devServices\.enabled"):
        chart.template(sets=["devServices.enabled=true"])


def test_turning_on_both_hpa_and_keda_for_one_workload_fails(chart: Chart) -> None:
    with pytest.raises(RenderError, match=r"components\.worker: autoscaling \(HPA\) and keda"):
        chart.template(
            sets=[
                "components.worker.keda.enabled=true",
                "components.worker.autoscaling.enabled=true",
            ],
            set_strings=["keda.awsAccountId=123456789012"],
        )


def test_a_component_can_turn_off_what_the_default_block_turns_on(chart: Chart) -> None:
    documents = chart.template(
        sets=["default.autoscaling.enabled=true", "components.worker.autoscaling.enabled=false"]
    )
    targets = {
        doc["spec"]["scaleTargetRef"]["name"]
        for doc in of_kind(documents, "HorizontalPodAutoscaler")
    }
    assert f"{RELEASE}-worker" not in targets
    assert f"{RELEASE}-notifier" in targets


def _pod_annotations(documents: list[dict[str, Any]], component: str) -> dict[str, str]:
    deployment = by_name(documents, "Deployment", f"{RELEASE}-{component}")
    return deployment["spec"]["template"]["metadata"]["annotations"]


def test_the_config_checksum_changes_when_a_setting_changes(chart: Chart) -> None:
    before = _pod_annotations(chart.template(), "api")
    after = _pod_annotations(chart.template(sets=["config.shopName=Another Bakery"]), "api")
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] == after["checksum/secret"]


def test_the_secret_checksum_changes_when_a_credential_changes(chart: Chart) -> None:
    url = "secrets.databaseUrl=postgresql://pickup:{}@db:5432/pickup"
    before = _pod_annotations(chart.template(sets=[url.format("one")]), "worker")
    after = _pod_annotations(chart.template(sets=[url.format("two")]), "worker")
    assert before["checksum/secret"] != after["checksum/secret"]
    assert before["checksum/config"] == after["checksum/config"]


def test_the_checksums_are_stable_between_two_renders_of_the_same_values(chart: Chart) -> None:
    assert _pod_annotations(chart.template(), "api") == _pod_annotations(chart.template(), "api")


def test_the_install_notes_print_the_shop_url_and_the_next_commands(chart: Chart) -> None:
    result = chart.run(
        chart.tools.helm, "install", RELEASE, str(CHART), "--namespace", "pickup",
        "--dry-run=client", "--values", str(values_file("kind")),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "http://localhost/" in notes
    assert f"helm test {RELEASE} --namespace pickup" in notes
    assert "pickup seed" in notes
