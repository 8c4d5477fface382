"""kopf peering for several operator replicas, the operator's egress, the ensure-admin hook."""

from __future__ import annotations

from typing import Any

import yaml

from tests.chart.conftest import CHART, NAMESPACE, RELEASE, Chart, by_name, of_kind

PEERING_CRDS = {
    doc["metadata"]["name"]: doc
    for doc in yaml.safe_load_all((CHART / "crds" / "kopfpeering.yaml").read_text())
    if doc
}


def _operator_args(documents: list[dict[str, Any]]) -> list[str]:
    deployment = by_name(documents, "Deployment", f"{RELEASE}-operator")
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_kopfs_peering_crds_follow_its_documented_schema() -> None:
    assert set(PEERING_CRDS) == {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"}
    scopes = {"KopfPeering": "Namespaced", "ClusterKopfPeering": "Cluster"}
    for crd in PEERING_CRDS.values():
        spec = crd["spec"]
        assert spec["group"] == "kopf.dev"
        assert spec["scope"] == scopes[spec["names"]["kind"]]
        [version] = spec["versions"]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_one_operator_replica_runs_without_a_peering(chart: Chart) -> None:
    documents = chart.scenario("default")
    assert not of_kind(documents, "KopfPeering")
    assert "--peering" not in _operator_args(documents)


def test_several_operator_replicas_share_the_kopf_peering_pickup(chart: Chart) -> None:
    documents = chart.template(sets=["components.operator.replicas=2"])
    [peering] = of_kind(documents, "KopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == "pickup"
    assert peering["metadata"]["namespace"] == NAMESPACE
    args = _operator_args(documents)
    assert args[0] == "operator"
    assert args[args.index("--peering") + 1] == "pickup"
    assert args.count("--peering") == 1
    role = by_name(documents, "Role", f"{RELEASE}-operator")
    assert any("kopfpeerings" in rule["resources"] for rule in role["rules"])


def test_the_operator_has_no_database_egress(chart: Chart) -> None:
    for scenario in ("eks", "kind"):
        documents = chart.template(
            [CHART / "ci" / f"{scenario}-values.yaml"], sets=["networkPolicy.enabled=true"]
        )
        policy = by_name(documents, "NetworkPolicy", f"{RELEASE}-operator")["spec"]
        ports = {port["port"] for rule in policy["egress"] for port in rule["ports"]}
        # Redis carries the stock events the operator reacts to; PostgreSQL is never needed.
        assert 5432 not in ports and 6379 in ports, scenario
        peers = [peer for rule in policy["egress"] for peer in rule.get("to", [])]
        selected = [
            peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
            for peer in peers
            if "podSelector" in peer
        ]
        assert "postgres" not in selected, scenario
        api = by_name(documents, "NetworkPolicy", f"{RELEASE}-api")["spec"]
        assert 5432 in {port["port"] for rule in api["egress"] for port in rule["ports"]}


def _jobs(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(documents, "Job")}


def test_ensure_admin_is_off_without_a_password(chart: Chart) -> None:
    assert f"{RELEASE}-ensure-admin" not in _jobs(chart.scenario("default"))
    assert f"{RELEASE}-ensure-admin" not in _jobs(chart.scenario("eks"))
    kind_off = chart.template(
        [CHART / "ci" / "kind-values.yaml"], sets=["admin.createInitialAdmin=false"]
    )
    assert f"{RELEASE}-ensure-admin" not in _jobs(kind_off)


def test_ensure_admin_runs_after_the_migrations_with_the_secrets_password(chart: Chart) -> None:
    documents = chart.template(
        sets=["secrets.adminPassword=a-long-admin-password", "networkPolicy.enabled=true"]
    )
    jobs = _jobs(documents)
    job, migrate = jobs[f"{RELEASE}-ensure-admin"], jobs[f"{RELEASE}-migrate"]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    migrate_annotations = migrate["metadata"]["annotations"]
    if migrate_annotations["helm.sh/hook"].startswith("post-"):
        assert int(annotations["helm.sh/hook-weight"]) > int(
            migrate_annotations["helm.sh/hook-weight"]
        )
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["staff", "ensure-admin"]
    assert container["envFrom"] == [{"secretRef": {"name": RELEASE}}]
    password = {item["name"]: item for item in container["env"]}["PICKUP_ADMIN_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"] == {
        "name": RELEASE,
        "key": "PICKUP_ADMIN_PASSWORD",
    }
    account = by_name(documents, "ServiceAccount", f"{RELEASE}-ensure-admin")
    assert account["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    policy = by_name(documents, "NetworkPolicy", f"{RELEASE}-ensure-admin")["spec"]
    assert {port["port"] for rule in policy["egress"] for port in rule["ports"]} == {5432, 443}


def test_ensure_admin_runs_after_migrate_on_kind(chart: Chart) -> None:
    jobs = _jobs(chart.scenario("kind"))
    weight = {
        name: int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
        for name, job in jobs.items()
    }
    assert weight[f"{RELEASE}-ensure-admin"] > weight[f"{RELEASE}-migrate"]


def test_ensure_admin_reads_the_password_from_an_existing_secret_key(chart: Chart) -> None:
    documents = chart.template(
        [CHART / "ci" / "eks-values.yaml"], sets=["admin.existingSecretKey=admin-password"]
    )
    container = _jobs(documents)[f"{RELEASE}-ensure-admin"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["envFrom"] == [{"secretRef": {"name": "pickup-credentials"}}]
    password = {item["name"]: item for item in container["env"]}["PICKUP_ADMIN_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"] == {
        "name": "pickup-credentials",
        "key": "admin-password",
    }
