"""Properties every rendered scenario keeps: hardening, probes, resources, stable selectors."""

from __future__ import annotations

import base64
from typing import Any

from tests.chart.conftest import (
    CHART,
    RELEASE,
    Chart,
    by_name,
    containers,
    of_kind,
    pod_specs,
)

VERSION_LABELS = {"app.kubernetes.io/version", "helm.sh/chart"}
PICKUP_COMPONENTS = {"api", "worker", "notifier", "operator"}
TMP = "/tmp"  # noqa: S108 - the emptyDir mount point under a read-only root filesystem


def _seccomp(pod: dict[str, Any], container: dict[str, Any]) -> str | None:
    profile = container.get("securityContext", {}).get("seccompProfile") or pod.get(
        "securityContext", {}
    ).get("seccompProfile")
    return profile and profile.get("type")


def test_every_container_runs_as_non_root(rendered: list[dict[str, Any]]) -> None:
    for name, pod in pod_specs(rendered):
        for container in containers(pod):
            context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, name
            assert context.get("runAsUser", 0) > 0, name


def test_every_container_has_a_read_only_root_filesystem(rendered: list[dict[str, Any]]) -> None:
    for name, pod in pod_specs(rendered):
        for container in containers(pod):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name


def test_every_container_drops_all_capabilities_and_privilege_escalation(
    rendered: list[dict[str, Any]],
) -> None:
    for name, pod in pod_specs(rendered):
        for container in containers(pod):
            context = container["securityContext"]
            assert "ALL" in context["capabilities"]["drop"], name
            assert not context["capabilities"].get("add"), name
            assert context["allowPrivilegeEscalation"] is False, name
            assert not context.get("privileged"), name


def test_every_container_uses_the_runtime_default_seccomp_profile(
    rendered: list[dict[str, Any]],
) -> None:
    for name, pod in pod_specs(rendered):
        for container in containers(pod):
            assert _seccomp(pod, container) == "RuntimeDefault", name


def test_every_pod_avoids_host_namespaces_and_host_paths(rendered: list[dict[str, Any]]) -> None:
    for name, pod in pod_specs(rendered):
        assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), name
        assert not any("hostPath" in volume for volume in pod.get("volumes", [])), name


def test_every_pickup_pod_has_a_writable_tmp_on_an_empty_dir(
    rendered: list[dict[str, Any]],
) -> None:
    for name, pod in pod_specs(rendered):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            if container["name"] == "readyz":  # the curl test pod writes nothing
                continue
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert TMP in mounts, name
            assert "emptyDir" in volumes[mounts[TMP]], name


def test_every_deployment_has_readiness_and_liveness_probes_and_resources(
    rendered: list[dict[str, Any]],
) -> None:
    for deployment in of_kind(rendered, "Deployment"):
        name = deployment["metadata"]["name"]
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container.get("readinessProbe"), name
            assert container.get("livenessProbe"), name
            resources = container.get("resources", {})
            assert resources.get("requests", {}).get("cpu"), name
            assert resources.get("requests", {}).get("memory"), name
            assert resources.get("limits", {}).get("memory"), name


def test_component_liveness_touches_no_dependency_while_readiness_does(
    rendered: list[dict[str, Any]],
) -> None:
    for deployment in of_kind(rendered, "Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        if component not in PICKUP_COMPONENTS:
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        expected = "/healthz" if component == "operator" else "/readyz"
        assert container["readinessProbe"]["httpGet"]["path"] == expected


def test_worker_and_notifier_are_told_their_health_port(rendered: list[dict[str, Any]]) -> None:
    for deployment in of_kind(rendered, "Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        if component not in {"worker", "notifier"}:
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["PICKUP_HEALTH_PORT"] == "9000"
        assert container["ports"][0]["containerPort"] == 9000


def test_selectors_are_free_of_version_labels(rendered: list[dict[str, Any]]) -> None:
    selectors: list[tuple[str, dict[str, str]]] = []
    for doc in rendered:
        kind, spec = doc["kind"], doc.get("spec") or {}
        if kind in {"Deployment", "PodDisruptionBudget"}:
            selectors.append((kind, spec["selector"]["matchLabels"]))
        elif kind == "Service":
            selectors.append((kind, spec["selector"]))
        elif kind == "NetworkPolicy":
            selectors.append((kind, spec["podSelector"].get("matchLabels", {})))
        elif kind == "ServiceMonitor":
            selectors.append((kind, spec["selector"]["matchLabels"]))
    assert selectors
    for kind, labels in selectors:
        assert not VERSION_LABELS & set(labels), (kind, labels)


def test_images_are_pinned_and_never_latest(rendered: list[dict[str, Any]]) -> None:
    for name, pod in pod_specs(rendered):
        for container in containers(pod):
            image = container["image"]
            reference = image.rsplit("/", 1)[-1]
            assert "@sha256:" in image or ":" in reference, (name, image)
            assert not image.endswith(":latest"), (name, image)


def test_hpa_and_keda_never_target_the_same_workload(rendered: list[dict[str, Any]]) -> None:
    hpa = {
        doc["spec"]["scaleTargetRef"]["name"]
        for doc in of_kind(rendered, "HorizontalPodAutoscaler")
    }
    keda = {doc["spec"]["scaleTargetRef"]["name"] for doc in of_kind(rendered, "ScaledObject")}
    assert not hpa & keda


def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(
    rendered: list[dict[str, Any]],
) -> None:
    scaled = {
        doc["spec"]["scaleTargetRef"]["name"]
        for doc in of_kind(rendered, "HorizontalPodAutoscaler") + of_kind(rendered, "ScaledObject")
    }
    for deployment in of_kind(rendered, "Deployment"):
        if deployment["metadata"]["name"] in scaled:
            assert "replicas" not in deployment["spec"]


def test_every_pickup_component_has_its_own_service_account(
    rendered: list[dict[str, Any]],
) -> None:
    accounts = {doc["metadata"]["name"] for doc in of_kind(rendered, "ServiceAccount")}
    for deployment in of_kind(rendered, "Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in PICKUP_COMPONENTS:
            account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
            assert account == f"{RELEASE}-{component}"
            assert account in accounts
            token = deployment["spec"]["template"]["spec"]["automountServiceAccountToken"]
            assert token is (component == "operator")


def test_the_operator_may_touch_only_its_resource_status_events_and_peering(
    chart: Chart,
) -> None:
    documents = chart.scenario("default")
    role = by_name(documents, "Role", f"{RELEASE}-operator")
    granted = {
        (group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert ("pickup.dev", "inventorythresholds") in granted
    assert ("pickup.dev", "inventorythresholds/status") in granted
    assert ("", "events") in granted
    assert ("coordination.k8s.io", "leases") in granted
    assert ("kopf.dev", "kopfpeerings") in granted
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert "delete" not in rule["verbs"]
    cluster_role = of_kind(documents, "ClusterRole")[0]
    for rule in cluster_role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch", "patch"}
        assert "secrets" not in rule["resources"]


def test_the_migration_job_runs_migrate_as_a_pre_install_and_pre_upgrade_hook(
    chart: Chart,
) -> None:
    job = by_name(chart.scenario("eks"), "Job", f"{RELEASE}-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_the_bootstrap_job_is_off_for_eks_and_runs_after_the_dev_services_on_kind(
    chart: Chart,
) -> None:
    eks_jobs = {doc["metadata"]["name"] for doc in of_kind(chart.scenario("eks"), "Job")}
    assert f"{RELEASE}-bootstrap" not in eks_jobs
    kind_job = by_name(chart.scenario("kind"), "Job", f"{RELEASE}-bootstrap")
    assert kind_job["spec"]["template"]["spec"]["containers"][0]["args"] == ["bootstrap"]
    # moto and PostgreSQL are release resources on kind: they exist only after install.
    assert kind_job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"


def test_the_bootstrap_job_creates_the_monitoring_when_asked(chart: Chart) -> None:
    documents = chart.template(
        [CHART / "ci" / "kind-values.yaml"], sets=["bootstrap.monitoring=true"]
    )
    job = by_name(documents, "Job", f"{RELEASE}-bootstrap")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "bootstrap",
        "--monitoring",
    ]


def _all_env_names(documents: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for doc in documents:
        if doc["kind"] in {"ConfigMap", "Secret"}:
            names |= set((doc.get("data") or {}).keys()) | set(doc.get("stringData") or {})
    for _, pod in pod_specs(documents):
        for container in containers(pod):
            names |= {item["name"] for item in container.get("env", [])}
    return names


def test_no_static_aws_keys_are_rendered_for_eks(chart: Chart) -> None:
    documents = chart.scenario("eks")
    names = _all_env_names(documents)
    assert "PICKUP_AWS_ACCESS_KEY_ID" not in names
    assert "PICKUP_AWS_SECRET_ACCESS_KEY" not in names
    assert "AWS_ACCESS_KEY_ID" not in names
    assert not of_kind(documents, "Secret"), "eks takes its credentials from existingSecret"
    for auth in of_kind(documents, "TriggerAuthentication"):
        assert auth["spec"] == {"podIdentity": {"provider": "aws", "identityOwner": "workload"}}
    text = chart.scenario_text("eks")
    assert "AKIA" not in text


def test_eks_runs_in_production_with_an_iam_role_per_component(chart: Chart) -> None:
    documents = chart.scenario("eks")
    config = by_name(documents, "ConfigMap", RELEASE)["data"]
    assert config["PICKUP_ENV"] == "production"
    assert "PICKUP_AWS_ENDPOINT_URL" not in config
    roles = {}
    for account in of_kind(documents, "ServiceAccount"):
        annotations = account["metadata"].get("annotations") or {}
        if "eks.amazonaws.com/role-arn" in annotations:
            roles[account["metadata"]["name"]] = annotations["eks.amazonaws.com/role-arn"]
    expected = {f"{RELEASE}-{c}" for c in PICKUP_COMPONENTS} | {f"{RELEASE}-migrate"}
    assert set(roles) == expected
    assert len(set(roles.values())) == len(roles), "one role per component"


def test_kind_runs_the_dev_services_and_serves_the_shop_on_localhost(chart: Chart) -> None:
    documents = chart.scenario("kind")
    deployments = {doc["metadata"]["name"] for doc in of_kind(documents, "Deployment")}
    assert {f"{RELEASE}-postgres", f"{RELEASE}-redis", f"{RELEASE}-moto"} <= deployments
    ingress = of_kind(documents, "Ingress")[0]
    assert ingress["spec"]["rules"][0]["host"] == "localhost"
    config = by_name(documents, "ConfigMap", RELEASE)["data"]
    assert config["PICKUP_AWS_ENDPOINT_URL"] == f"http://{RELEASE}-moto:5000"
    secret = by_name(documents, "Secret", RELEASE)["data"]
    database = base64.b64decode(secret["PICKUP_DATABASE_URL"]).decode()
    assert database.startswith(f"postgresql://pickup:pickup-dev-only@{RELEASE}-postgres:5432/")


def test_network_policies_deny_by_default_and_allow_each_component_its_needs(
    chart: Chart,
) -> None:
    documents = chart.scenario("eks")
    policies = {doc["metadata"]["name"]: doc["spec"] for doc in of_kind(documents, "NetworkPolicy")}
    deny = policies[f"{RELEASE}-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny

    def egress_ports(component: str) -> set[int]:
        rules = policies[f"{RELEASE}-{component}"]["egress"]
        return {port["port"] for rule in rules for port in rule["ports"]}

    assert egress_ports("api") == {5432, 6379, 443}
    assert egress_ports("operator") == {443, 6379}
    assert policies[f"{RELEASE}-operator"]["ingress"] == []
    assert policies[f"{RELEASE}-worker"]["ingress"][0]["ports"] == [
        {"port": 9000, "protocol": "TCP"}
    ]


def test_the_helm_test_pod_checks_readyz_with_a_pinned_image(chart: Chart) -> None:
    pod = by_name(chart.scenario("default"), "Pod", f"{RELEASE}-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["image"].startswith("curlimages/curl:8.")
    assert container["args"][-1] == f"http://{RELEASE}-api:80/readyz"


def test_monitoring_resources_render_only_when_enabled(chart: Chart) -> None:
    default = chart.scenario("default")
    assert not of_kind(default, "ServiceMonitor") and not of_kind(default, "PrometheusRule")
    eks = chart.scenario("eks")
    monitored = {doc["metadata"]["name"] for doc in of_kind(eks, "ServiceMonitor")}
    assert monitored == {f"{RELEASE}-api", f"{RELEASE}-worker", f"{RELEASE}-notifier"}
    assert of_kind(eks, "PrometheusRule")
    dashboards = [
        doc for doc in of_kind(eks, "ConfigMap") if "dashboard" in doc["metadata"]["name"]
    ]
    assert dashboards and dashboards[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
