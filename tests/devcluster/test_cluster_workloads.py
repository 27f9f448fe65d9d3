"""Deployments and DaemonSets on the dev cluster: real pods, rollouts, kubectl, deletion."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import kubernetes
import pytest
from cluster_helpers import PATIENCE, unique_name
from kubernetes.client.exceptions import ApiException

from seccomp_devcluster.cluster import DevCluster

pytestmark = pytest.mark.cluster

KUBECTL = Path(__file__).resolve().parents[2] / "devcluster" / "kubectl"
SLEEPER = {"name": "c", "image": "busybox", "command": ["sleep", "300"]}


def kubectl(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path)}
    return subprocess.run([str(KUBECTL), *args], capture_output=True, text=True,
                          env=environment, timeout=PATIENCE + 30, check=False)


def apps_api(cluster: DevCluster) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(cluster.api_client())


def core_api(cluster: DevCluster) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(cluster.api_client())


def deployment(name: str, replicas: int, containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": containers,
                                           "terminationGracePeriodSeconds": 1}}}}


def daemonset(name: str, containers: list[dict[str, Any]],
              **pod_spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": containers,
                                           "terminationGracePeriodSeconds": 1,
                                           **pod_spec}}}}


def pods_of(cluster: DevCluster, name: str, *, active_only: bool = True) -> list[dict[str, Any]]:
    response: Any = core_api(cluster).list_namespaced_pod(
        "default", label_selector=f"app={name}", _preload_content=False)
    pods: list[dict[str, Any]] = json.loads(response.data)["items"]
    if active_only:
        pods = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
    return pods


def wait_until(description: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {description}")
        time.sleep(0.1)


def running_pods(cluster: DevCluster, name: str, count: int) -> list[dict[str, Any]]:
    """Wait until exactly `count` pods of `name` exist and all run; return them."""
    found: list[dict[str, Any]] = []

    def check() -> bool:
        nonlocal found
        found = pods_of(cluster, name, active_only=False)
        return len(found) == count and all(
            (pod.get("status") or {}).get("phase") == "Running" for pod in found)

    wait_until(f"{count} pods of {name} run", check)
    return found


def rollout_status(cluster: DevCluster, kind: str, name: str) -> str:
    result = kubectl(cluster, "rollout", "status", f"{kind}/{name}", f"--timeout={PATIENCE:g}s")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_deployment_rolls_out_two_replicas(devcluster: DevCluster) -> None:
    name = unique_name("web")
    created: Any = apps_api(devcluster).create_namespaced_deployment(
        "default", cast(Any, deployment(name, 2, [SLEEPER])), _preload_content=False)
    uid = json.loads(created.data)["metadata"]["uid"]

    output = rollout_status(devcluster, "deployment", name)
    waited = kubectl(devcluster, "wait", "--for=condition=Available", f"deployment/{name}",
                     f"--timeout={PATIENCE:g}s")
    pods = running_pods(devcluster, name, 2)
    status = json.loads(apps_api(devcluster).read_namespaced_deployment(
        name, "default", _preload_content=False).data)["status"]

    assert f'deployment "{name}" successfully rolled out' in output
    assert waited.returncode == 0, waited.stderr
    hashes = {pod["metadata"]["labels"]["pod-template-hash"] for pod in pods}
    assert len(hashes) == 1
    template_hash = next(iter(hashes))
    for pod in pods:
        assert re.fullmatch(rf"{name}-{template_hash}-[bcdfghjklmnpqrstvwxz2456789]{{5}}",
                            pod["metadata"]["name"])
        reference = pod["metadata"]["ownerReferences"][0]
        assert reference["kind"] == "Deployment"
        assert reference["uid"] == uid
        assert reference["controller"] is True
    assert status["replicas"] == 2
    assert status["readyReplicas"] == 2
    assert status["availableReplicas"] == 2
    assert status["updatedReplicas"] == 2
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"


def test_deployment_scales_up_and_down(devcluster: DevCluster) -> None:
    name = unique_name("scale")
    apps = apps_api(devcluster)
    apps.create_namespaced_deployment("default", cast(Any, deployment(name, 1, [SLEEPER])),
                                      _preload_content=False)
    first = running_pods(devcluster, name, 1)[0]["metadata"]["name"]

    apps.patch_namespaced_deployment(name, "default", {"spec": {"replicas": 3}},
                                     _content_type="application/merge-patch+json",
                                     _preload_content=False)
    scaled_up = {pod["metadata"]["name"] for pod in running_pods(devcluster, name, 3)}
    rollout_status(devcluster, "deployment", name)

    apps.patch_namespaced_deployment(name, "default", {"spec": {"replicas": 1}},
                                     _content_type="application/merge-patch+json",
                                     _preload_content=False)
    wait_until(f"{name} has one pod", lambda: len(pods_of(devcluster, name,
                                                            active_only=False)) == 1)
    remaining = pods_of(devcluster, name)

    assert first in scaled_up
    assert len(scaled_up) == 3
    assert len(remaining) == 1
    assert remaining[0]["metadata"]["name"] in scaled_up


def test_template_change_replaces_pods(devcluster: DevCluster) -> None:
    name = unique_name("change")
    apps = apps_api(devcluster)
    apps.create_namespaced_deployment("default", cast(Any, deployment(name, 2, [SLEEPER])),
                                      _preload_content=False)
    old = {pod["metadata"]["name"] for pod in running_pods(devcluster, name, 2)}

    apps.patch_namespaced_deployment(
        name, "default",
        {"spec": {"template": {"metadata": {"annotations": {"changed": "yes"}}}}},
        _content_type="application/merge-patch+json", _preload_content=False)
    rollout_status(devcluster, "deployment", name)
    new = running_pods(devcluster, name, 2)

    assert old.isdisjoint(pod["metadata"]["name"] for pod in new)
    assert all(pod["metadata"]["annotations"]["changed"] == "yes" for pod in new)


def test_deleting_deployment_removes_pods(devcluster: DevCluster) -> None:
    name = unique_name("gone")
    apps = apps_api(devcluster)
    apps.create_namespaced_deployment("default", cast(Any, deployment(name, 2, [SLEEPER])),
                                      _preload_content=False)
    running_pods(devcluster, name, 2)

    apps.delete_namespaced_deployment(name, "default", _preload_content=False)

    wait_until(f"the pods of {name} are gone",
               lambda: pods_of(devcluster, name, active_only=False) == [])


def test_unready_deployment_is_not_available(devcluster: DevCluster) -> None:
    name = unique_name("unready")
    container = {**SLEEPER, "readinessProbe": {"exec": {"command": ["false"]},
                                               "periodSeconds": 1}}
    apps_api(devcluster).create_namespaced_deployment(
        "default", cast(Any, deployment(name, 1, [container])), _preload_content=False)
    running_pods(devcluster, name, 1)

    def status() -> dict[str, Any]:
        found: dict[str, Any] = json.loads(apps_api(devcluster).read_namespaced_deployment(
            name, "default", _preload_content=False).data).get("status") or {}
        return found

    wait_until("the status counts the pod", lambda: status().get("replicas") == 1)
    result = kubectl(devcluster, "rollout", "status", f"deployment/{name}", "--timeout=2s")
    final = status()

    assert result.returncode != 0
    assert final["availableReplicas"] == 0
    available = next(c for c in final["conditions"] if c["type"] == "Available")
    assert available["status"] == "False"
    assert available["reason"] == "MinimumReplicasUnavailable"


@pytest.mark.devcluster(nodes=2)
def test_daemonset_runs_one_pod_per_node(devcluster: DevCluster) -> None:
    name = unique_name("daemon")
    apps_api(devcluster).create_namespaced_daemon_set(
        "default", cast(Any, daemonset(name, [SLEEPER], hostPID=True)), _preload_content=False)

    output = rollout_status(devcluster, "daemonset", name)
    pods = running_pods(devcluster, name, 2)
    status = json.loads(apps_api(devcluster).read_namespaced_daemon_set(
        name, "default", _preload_content=False).data)["status"]

    assert f'daemon set "{name}" successfully rolled out' in output
    assert sorted(pod["spec"]["nodeName"] for pod in pods) == ["node-1", "node-2"]
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
        assert "controller-revision-hash" in pod["metadata"]["labels"]
        keys = {toleration["key"] for toleration in pod["spec"]["tolerations"]}
        assert "node.kubernetes.io/not-ready" in keys
    assert status["desiredNumberScheduled"] == 2
    assert status["currentNumberScheduled"] == 2
    assert status["numberReady"] == 2
    assert status["numberAvailable"] == 2
    assert status["updatedNumberScheduled"] == 2
    assert status["numberMisscheduled"] == 0


@pytest.mark.devcluster(nodes=2)
def test_daemonset_template_change_replaces_pods(devcluster: DevCluster) -> None:
    name = unique_name("daemon-change")
    apps = apps_api(devcluster)
    apps.create_namespaced_daemon_set("default", cast(Any, daemonset(name, [SLEEPER])),
                                      _preload_content=False)
    old = {pod["metadata"]["name"] for pod in running_pods(devcluster, name, 2)}

    apps.patch_namespaced_daemon_set(
        name, "default",
        {"spec": {"template": {"metadata": {"annotations": {"changed": "yes"}}}}},
        _content_type="application/merge-patch+json", _preload_content=False)
    rollout_status(devcluster, "daemonset", name)
    new = running_pods(devcluster, name, 2)

    assert old.isdisjoint(pod["metadata"]["name"] for pod in new)
    assert sorted(pod["spec"]["nodeName"] for pod in new) == ["node-1", "node-2"]


@pytest.mark.devcluster(nodes=2)
def test_daemonset_node_selector_limits_nodes(devcluster: DevCluster) -> None:
    name = unique_name("daemon-selector")
    apps_api(devcluster).create_namespaced_daemon_set(
        "default", cast(Any, daemonset(name, [SLEEPER],
                                       nodeSelector={"kubernetes.io/hostname": "node-2"})),
        _preload_content=False)

    rollout_status(devcluster, "daemonset", name)
    pods = running_pods(devcluster, name, 1)

    assert pods[0]["spec"]["nodeName"] == "node-2"


def test_daemonset_follows_nodes_coming_and_going(devcluster: DevCluster) -> None:
    name = unique_name("daemon-nodes")
    node_name = unique_name("extra-node")
    core = core_api(devcluster)
    apps_api(devcluster).create_namespaced_daemon_set(
        "default", cast(Any, daemonset(name, [SLEEPER])), _preload_content=False)
    running_pods(devcluster, name, 1)

    # A Node object with no node process: its pod is created and stays Pending.
    core.create_node(cast(Any, {"apiVersion": "v1", "kind": "Node",
                                "metadata": {"name": node_name}}), _preload_content=False)
    try:
        core.patch_node_status(node_name, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"}]}},
            _content_type="application/merge-patch+json", _preload_content=False)
        wait_until(f"{node_name} gets a pod of {name}", lambda: node_name in {
            pod["spec"].get("nodeName") for pod in pods_of(devcluster, name)})
    finally:
        core.delete_node(node_name, _preload_content=False)

    wait_until(f"the pod of {name} on {node_name} is gone", lambda: node_name not in {
        pod["spec"].get("nodeName") for pod in pods_of(devcluster, name, active_only=False)})
    assert [pod["spec"]["nodeName"] for pod in pods_of(devcluster, name)] == ["node-1"]


def test_deleting_daemonset_removes_pods(devcluster: DevCluster) -> None:
    name = unique_name("daemon-gone")
    apps = apps_api(devcluster)
    apps.create_namespaced_daemon_set("default", cast(Any, daemonset(name, [SLEEPER])),
                                      _preload_content=False)
    running_pods(devcluster, name, 1)

    apps.delete_namespaced_daemon_set(name, "default", _preload_content=False)

    wait_until(f"the pods of {name} are gone",
               lambda: pods_of(devcluster, name, active_only=False) == [])
    with pytest.raises(ApiException) as raised:
        apps.read_namespaced_daemon_set(name, "default", _preload_content=False)
    assert raised.value.status == 404


KOPF_OPERATOR = '''
import kopf


@kopf.on.create("configmaps", labels={"devcluster-test": kopf.PRESENT})
def mark(patch, **_):
    patch.metadata.annotations["handled-by"] = "kopf-in-a-pod"
'''


def test_kopf_operator_deployment_handles_objects(devcluster: DevCluster) -> None:
    name = unique_name("operator")
    core = core_api(devcluster)
    core.create_namespaced_config_map("default", cast(Any, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"operator.py": KOPF_OPERATOR}}), _preload_content=False)
    container = {
        "name": "operator", "image": "ghcr.io/seccomp-recorder/seccomp-recorder:dev",
        "command": ["python", "-m", "kopf", "run", "/operator/operator.py", "--standalone",
                    "--namespace=default", "--liveness=http://0.0.0.0:8080/healthz"],
        "ports": [{"name": "health", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "health"},
                           "periodSeconds": 1},
        # kopf needs a user name, and the host's /etc/passwd has an entry for 65534.
        "securityContext": {"runAsUser": 65534, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "code", "mountPath": "/operator"}],
    }
    manifest = deployment(name, 1, [container])
    manifest["spec"]["template"]["spec"]["volumes"] = [
        {"name": "code", "configMap": {"name": name}}]
    target = unique_name("handled")
    try:
        apps_api(devcluster).create_namespaced_deployment("default", cast(Any, manifest),
                                                          _preload_content=False)
        rollout_status(devcluster, "deployment", name)
        core.create_namespaced_config_map("default", cast(Any, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": target, "namespace": "default",
                         "labels": {"devcluster-test": "yes"}}}), _preload_content=False)

        def handled() -> bool:
            found: Any = core.read_namespaced_config_map(target, "default",
                                                         _preload_content=False)
            annotations = json.loads(found.data)["metadata"].get("annotations") or {}
            return annotations.get("handled-by") == "kopf-in-a-pod"

        wait_until(f"kopf handled {target}", handled)
    finally:
        apps_api(devcluster).delete_namespaced_deployment(name, "default",
                                                          _preload_content=False)
        for config_map in (name, target):
            try:
                core.delete_namespaced_config_map(config_map, "default",
                                                  _preload_content=False)
            except ApiException as error:
                if error.status != 404:
                    raise


MARKER = "/var/lib/kubelet/seccomp/agent-was-here"
AGENT_SCRIPT = """
set -e
test -e /sys/kernel/btf/vmlinux
test -d /sys/fs/bpf
echo "$NODE_NAME" > /var/lib/kubelet/seccomp/agent-was-here
touch /sys/kernel/btf/x 2>/dev/null && exit 3
echo started
exec sleep 300
"""


@pytest.mark.devcluster(nodes=2)
def test_agent_like_daemonset_uses_host_paths(devcluster: DevCluster) -> None:
    name = unique_name("agent")
    container = {
        "name": "agent", "image": "seccomp-recorder:dev",
        "command": ["sh", "-c", AGENT_SCRIPT],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "securityContext": {
            "runAsUser": 0, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"],
                             "add": ["BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE",
                                     "DAC_OVERRIDE"]},
            "seccompProfile": {"type": "Unconfined"}},
        "volumeMounts": [
            {"name": "seccomp", "mountPath": "/var/lib/kubelet/seccomp"},
            {"name": "bpffs", "mountPath": "/sys/fs/bpf"},
            {"name": "btf", "mountPath": "/sys/kernel/btf", "readOnly": True},
            {"name": "state", "mountPath": "/var/lib/seccomp-recorder"},
            {"name": "tmp", "mountPath": "/tmp"}],
        "readinessProbe": {"exec": {"command": ["test", "-e", MARKER]}, "periodSeconds": 1},
    }
    volumes = [
        {"name": "seccomp", "hostPath": {"path": "/var/lib/kubelet/seccomp",
                                         "type": "DirectoryOrCreate"}},
        {"name": "bpffs", "hostPath": {"path": "/sys/fs/bpf", "type": "Directory"}},
        {"name": "btf", "hostPath": {"path": "/sys/kernel/btf", "type": "Directory"}},
        {"name": "state", "hostPath": {"path": "/var/lib/seccomp-recorder",
                                       "type": "DirectoryOrCreate"}},
        {"name": "tmp", "emptyDir": {"medium": "Memory"}}]
    apps_api(devcluster).create_namespaced_daemon_set(
        "default", cast(Any, daemonset(name, [container], hostPID=True, volumes=volumes)),
        _preload_content=False)

    rollout_status(devcluster, "daemonset", name)

    for node in devcluster.nodes:
        marker = node.seccomp_dir / "agent-was-here"
        assert marker.read_text() == f"{node.name}\n"
        marker.unlink()
        assert (node.state_dir / "host" / "var/lib/seccomp-recorder").is_dir()
    assert not Path("/var/lib/seccomp-recorder").exists()
    assert not Path("/var/lib/kubelet").exists()


KOPF_PEERING_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "kopfpeerings.kopf.dev"},
    "spec": {"scope": "Namespaced", "group": "kopf.dev",
             "names": {"kind": "KopfPeering", "plural": "kopfpeerings",
                       "singular": "kopfpeering"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object", "properties": {"status": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}


def test_kopf_replicas_meet_through_peering(devcluster: DevCluster) -> None:
    name = unique_name("peering")
    extensions = kubernetes.client.ApiextensionsV1Api(devcluster.api_client())
    custom = kubernetes.client.CustomObjectsApi(devcluster.api_client())
    core = core_api(devcluster)
    extensions.create_custom_resource_definition(cast(Any, KOPF_PEERING_CRD),
                                                 _preload_content=False)
    core.create_namespaced_config_map("default", cast(Any, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"operator.py": KOPF_OPERATOR}}), _preload_content=False)
    container = {
        "name": "operator", "image": "seccomp-recorder:dev",
        "command": ["python", "-m", "kopf", "run", "/operator/operator.py",
                    f"--peering={name}", "--namespace=default"],
        "securityContext": {"runAsUser": 65534, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "code", "mountPath": "/operator"}],
    }
    manifest = deployment(name, 2, [container])
    manifest["spec"]["template"]["spec"]["volumes"] = [
        {"name": "code", "configMap": {"name": name}}]
    try:
        custom.create_namespaced_custom_object(
            "kopf.dev", "v1", "default", "kopfpeerings",
            {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}},
            _preload_content=False)
        apps_api(devcluster).create_namespaced_deployment("default", cast(Any, manifest),
                                                          _preload_content=False)
        rollout_status(devcluster, "deployment", name)

        def peers() -> list[str]:
            found: Any = custom.get_namespaced_custom_object(
                "kopf.dev", "v1", "default", "kopfpeerings", name, _preload_content=False)
            return sorted((json.loads(found.data).get("status") or {}).keys())

        # Each replica writes its own identity into the peering object.
        wait_until("both replicas appear in the peering object", lambda: len(peers()) == 2)
    finally:
        apps_api(devcluster).delete_namespaced_deployment(name, "default",
                                                          _preload_content=False)
        core.delete_namespaced_config_map(name, "default", _preload_content=False)
        extensions.delete_custom_resource_definition(KOPF_PEERING_CRD["metadata"]["name"],
                                                     _preload_content=False)
