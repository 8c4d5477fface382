"""The Dockerfile, compose.yaml and skaffold.yaml, checked offline."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.chart.conftest import CHART, ROOT, Chart, values_file

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_hadolint_finds_nothing_in_the_dockerfile(chart: Chart) -> None:
    result = chart.run(chart.tools.hadolint, "--no-color", str(ROOT / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_builds_from_a_slim_python_3_11_pinned_to_an_exact_version() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    assert len(re.findall(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)) >= 2


def test_the_image_installs_exactly_the_locked_dependencies_with_uv() -> None:
    assert "uv sync --frozen --no-dev" in DOCKERFILE
    assert re.search(r"uv==\d+\.\d+\.\d+", DOCKERFILE)


def test_the_final_stage_runs_pickup_as_uid_10001_without_build_tools() -> None:
    final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    assert "USER 10001:10001" in final
    assert 'ENTRYPOINT ["pickup"]' in final
    assert "pip uninstall" in final
    assert not re.search(r"apt-get install|pip install|uv sync", final)
    assert "PYTHONDONTWRITEBYTECODE=1" in final and "HOME=/tmp" in final


def test_the_docker_build_context_holds_only_what_the_image_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*"
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, flags=re.MULTILINE))
    sources = {source for line in copied for source in line.split()}
    for source in sources:
        assert f"!{source.rstrip('/')}" in ignore or f"!{source.rstrip('/')}/" in ignore, source


def test_compose_yaml_is_valid_against_the_compose_specification(chart: Chart) -> None:
    result = chart.run(
        chart.tools.check_jsonschema,
        "--schemafile",
        chart.tools.compose_schema,
        str(ROOT / "compose.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_process_from_the_one_image_hardened_like_the_chart() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "moto"} <= set(services)
    processes = {"api", "worker", "notifier", "migrate", "bootstrap", "seed"}
    for name in processes:
        service = services[name]
        assert service["image"] == "pickup:dev", name
        assert service["command"] == [name], name
        assert service["read_only"] is True and service["user"] == "10001:10001", name
        assert service["cap_drop"] == ["ALL"], name
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name


def test_skaffold_deploys_the_chart_with_kind_and_eks_profiles() -> None:
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    assert skaffold["apiVersion"].startswith("skaffold/v4")
    assert [a["image"] for a in skaffold["build"]["artifacts"]] == ["pickup"]
    profiles: dict[str, Any] = {p["name"]: p for p in skaffold["profiles"]}
    assert set(profiles) == {"kind", "eks"}
    for name, profile in profiles.items():
        (release,) = profile["manifests"]["helm"]["releases"]
        assert (ROOT / release["chartPath"]) == CHART
        assert [ROOT / v for v in release["valuesFiles"]] == [values_file(name)]
        assert release["setValueTemplates"]["image.repository"] == "{{.IMAGE_REPO_pickup}}"
    forwards = {f["resourceName"]: f["localPort"] for f in profiles["kind"]["portForward"]}
    assert forwards["pickup-api"] == 8000


def test_the_kind_cluster_maps_the_ingress_ports_and_labels_the_node() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    node = config["nodes"][0]
    assert {m["hostPort"] for m in node["extraPortMappings"]} >= {80, 443}
    assert "ingress-ready=true" in "".join(node["kubeadmConfigPatches"])
