"""The rendered chart: valid Kubernetes objects, and settings the operator accepts.

Built-in kinds are validated with kubernetes-validate (strict: no unknown fields) against
the Kubernetes version in chart_helpers. The custom resources are checked against their
CRDs. The operator's environment goes through the operator's own settings loader, and
the agent DaemonSet that the operator would build from it is validated too.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from chart_helpers import (
    CHART,
    KUBERNETES_VERSION,
    NAMESPACE,
    NONDEFAULT_VALUES,
    Manifest,
    find,
    only,
    operator_container,
    operator_environment,
    read_yaml_documents,
    render,
)

from seccomp_recorder.operator.daemonset import build_agent_daemonset
from seccomp_recorder.operator.settings import OperatorSettings, load_settings

CUSTOM_KINDS = {"ClusterKopfPeering", "ServiceMonitor"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}

# Value files and extra options for each rendering under test.
VARIANTS = {
    "default": (),
    "nondefault": ("--values", str(NONDEFAULT_VALUES)),
    "single replica without metrics": (
        "--set", "operator.replicas=1", "--set", "metrics.enabled=false",
        "--set", "rbac.create=false",
    ),
}


@pytest.fixture(scope="module", params=list(VARIANTS), name="manifests")
def manifests_fixture(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(*VARIANTS[request.param])


def validate_builtin(manifest: Manifest) -> None:
    """Validate a built-in kind strictly; raise with the object and the failing field."""
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(item) for item in error.path)
        name = f"{manifest['kind']} {manifest['metadata']['name']}"
        raise AssertionError(f"{name} is invalid at {path}: {error.message}") from None


def field_values(environment: dict[str, Manifest]) -> dict[str, str]:
    """Return the operator's variables as its pod would see them in NAMESPACE."""
    values = {}
    for name, entry in environment.items():
        if "value" in entry:
            values[name] = entry["value"]
        elif entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}:
            values[name] = NAMESPACE
    return values


def operator_settings(manifests: list[Manifest]) -> OperatorSettings:
    return load_settings(field_values(operator_environment(manifests)))


def test_builtin_kinds_are_valid(manifests: list[Manifest]) -> None:
    builtin = [manifest for manifest in manifests if manifest["kind"] not in CUSTOM_KINDS]
    assert builtin
    for manifest in builtin:
        validate_builtin(manifest)


def test_namespaced_objects_are_in_release_namespace(manifests: list[Manifest]) -> None:
    for manifest in manifests:
        metadata = manifest["metadata"]
        if manifest["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in metadata, f"{manifest['kind']} {metadata['name']}"
        else:
            assert metadata.get("namespace") == NAMESPACE, f"{manifest['kind']} {metadata['name']}"


def test_peering_object_matches_its_crd(manifests: list[Manifest]) -> None:
    (crd,) = read_yaml_documents(CHART / "crds" / "clusterkopfpeerings.yaml")
    peering = only(manifests, "ClusterKopfPeering")
    assert peering["apiVersion"] == f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.validate(peering, schema)
    environment = operator_environment(manifests)
    assert environment["SECCOMP_RECORDER_PEERING_NAME"]["value"] == peering["metadata"]["name"]


def test_operator_environment_loads_as_settings(manifests: list[Manifest]) -> None:
    settings = operator_settings(manifests)
    assert settings.namespace == NAMESPACE
    assert settings.operator_deployment == only(manifests, "Deployment")["metadata"]["name"]
    assert settings.peering_name is not None
    assert settings.health_port > 0


def test_agent_daemonset_from_chart_is_valid(manifests: list[Manifest]) -> None:
    settings = operator_settings(manifests)
    daemonset = build_agent_daemonset(settings)
    validate_builtin(daemonset)
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == settings.agent_service_account
    if settings.metrics_port:
        service = only(manifests, "Service", f"{agent_service_prefix(manifests)}-agent-metrics")
        labels = daemonset["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


def agent_service_prefix(manifests: list[Manifest]) -> str:
    name: str = only(manifests, "Deployment")["metadata"]["name"]
    return name.removesuffix("-operator")


def test_agent_service_account_is_created(
    manifests: list[Manifest],
) -> None:
    settings = operator_settings(manifests)
    accounts = {account["metadata"]["name"] for account in find(manifests, "ServiceAccount")}
    assert settings.agent_service_account in accounts


def test_default_values_map_to_operator_defaults() -> None:
    settings = operator_settings(render())
    assert settings.agent_image == "ghcr.io/seccomp-recorder/seccomp-recorder:0.1.0"
    assert settings.kubelet_root == PurePosixPath("/var/lib/kubelet")
    assert settings.agent_bpffs_path == PurePosixPath("/sys/fs/bpf")
    assert settings.agent_tolerations == ({"operator": "Exists"},)
    assert settings.agent_node_selector == {"kubernetes.io/os": "linux"}
    assert settings.agent_snapshot_interval == 10
    assert settings.profile_update_interval == 30
    assert settings.final_result_timeout == 60
    assert settings.log_level == "INFO"
    assert settings.metrics_port == 8080
    assert settings.peering_lifetime == 60
    assert settings.health_port == 8081


def test_nondefault_values_reach_operator_settings() -> None:
    settings = operator_settings(render("--values", str(NONDEFAULT_VALUES)))
    assert settings.agent_image == "registry.example.com/security/seccomp-recorder-agent:0.1.0-rc.1"
    assert settings.agent_image_pull_policy.value == "Never"
    assert settings.agent_service_account == "recorder-agent"
    assert settings.kubelet_root == PurePosixPath("/data/kubelet")
    assert settings.agent_bpffs_path == PurePosixPath("/run/bpf")
    assert settings.agent_tolerations[1] == {
        "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
        "tolerationSeconds": 300,
    }
    assert settings.agent_node_selector == {
        "kubernetes.io/os": "linux", "example.com/seccomp": "true",
    }
    assert settings.agent_resources["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert settings.agent_snapshot_interval == 2.5
    assert settings.profile_update_interval == 5
    assert settings.final_result_timeout == 120
    assert settings.log_level == "DEBUG"
    assert settings.log_format.value == "json"
    assert settings.metrics_port == 9090
    assert settings.peering_name == "seccomp"
    assert settings.peering_lifetime == 20
    assert settings.health_port == 9091


def test_operator_image_takes_digest() -> None:
    container = operator_container(render("--values", str(NONDEFAULT_VALUES)))
    assert container["image"] == (
        "registry.example.com/security/seccomp-recorder:0.1.0-rc.1@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    assert container["imagePullPolicy"] == "Always"


def test_operator_runs_restricted(manifests: list[Manifest]) -> None:
    pod = only(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = operator_container(manifests)["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in context["capabilities"]


def test_probes_use_the_operator_health_port(manifests: list[Manifest]) -> None:
    container = operator_container(manifests)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["health"] == operator_settings(manifests).health_port
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_metrics_port_is_declared_when_enabled(manifests: list[Manifest]) -> None:
    settings = operator_settings(manifests)
    ports = {port["name"]: port["containerPort"] for port in operator_container(manifests)["ports"]}
    if settings.metrics_port:
        assert ports["metrics"] == settings.metrics_port
        assert len(find(manifests, "Service")) == 2
    else:
        assert "metrics" not in ports
        assert find(manifests, "Service") == []


def test_replicas_and_disruption_budget(manifests: list[Manifest]) -> None:
    replicas = only(manifests, "Deployment")["spec"]["replicas"]
    budgets = find(manifests, "PodDisruptionBudget")
    if replicas > 1:
        assert [budget["spec"]["minAvailable"] for budget in budgets] == [1]
    else:
        assert budgets == []


def test_default_affinity_spreads_replicas_over_nodes() -> None:
    pod = only(render(), "Deployment")["spec"]["template"]["spec"]
    preferred = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_service_monitor_selects_both_metrics_services() -> None:
    manifests = render("--values", str(NONDEFAULT_VALUES))
    monitor = only(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    # NOTE: no schema of the Prometheus Operator's CRDs is available here, so these
    # checks cover the fields the chart sets, not the whole object.
    assert set(monitor["spec"]) == {"selector", "namespaceSelector", "endpoints"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["interval"] == "15s"
    assert endpoint["scrapeTimeout"] == "10s"
    selector: dict[str, Any] = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        service["metadata"]["name"] for service in find(manifests, "Service")
        if selector.items() <= service["metadata"]["labels"].items()
    ]
    assert selected == ["seccomp-operator-metrics", "seccomp-agent-metrics"]
    for service in find(manifests, "Service"):
        assert [port["name"] for port in service["spec"]["ports"]] == ["metrics"]


def test_service_monitor_is_off_by_default() -> None:
    assert find(render(), "ServiceMonitor") == []
