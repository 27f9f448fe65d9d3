"""The chart's RBAC rules allow every request the operator and the agents make.

The dev cluster does not enforce RBAC, so the operator and one agent per node run as
local processes whose requests go through recording proxies (rbac_audit). They run
with the chart's settings through a whole recording: start-up, a SeccompProfile
installed on every node, a recording of a pod that ends in a profile, and deletion.
Then each recorded request is checked against the rules the chart grants that process.

The chart is applied too, for the objects the operator reads (its Deployment, the
peering object). Its operator Deployment runs no replicas, and its agent image is one
the dev cluster cannot run, so no pod competes with the local processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from chart_helpers import (
    CHART,
    Manifest,
    bpf_filesystem,
    helm_binary,
    kubectl,
    render,
    wait_for,
)
from kubernetes.client.exceptions import ApiException
from rbac_audit import Attributes, RecordingProxy, attributes, denied_requests

from kube_reads import read_or_none
from prerequisites import require
from seccomp_devcluster.cluster import DevCluster
from seccomp_recorder.recorder.recorder import DEFAULT_OBJECT_PATH

pytestmark = pytest.mark.cluster

GROUP, VERSION = "seccomp-recorder.io", "v1alpha1"
# An image the dev cluster cannot run, so the operator's DaemonSet starts no agent.
UNRUNNABLE_AGENT = "registry.example.com/rbac-audit/agent"
# Seconds a stopping process gets before it is killed.
STOP_TIMEOUT = 30


class Process:
    """One operator or agent process, logging to a file."""

    def __init__(self, command: list[str], environment: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=environment, start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str) -> None:
        def logged() -> bool:
            assert self.process.poll() is None, f"exited with {self.process.returncode}:\n{self.log()}"
            return text in self.log()

        wait_for(f"{text!r} in {self.log_path.name}", logged)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def proxied_kubeconfig(cluster: DevCluster, proxy: RecordingProxy, path: Path) -> Path:
    """Write a copy of the cluster's kubeconfig that points at `proxy`."""
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = proxy.url
    path.write_text(yaml.safe_dump(config))
    return path


def operator_environment(manifests: list[Manifest], namespace: str) -> dict[str, str]:
    """Return the operator container's variables as the chart sets them, for a local process."""
    (deployment,) = [manifest for manifest in manifests if manifest["kind"] == "Deployment"]
    variables = {}
    for entry in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in entry:
            variables[entry["name"]] = entry["value"]
    variables.update({
        "SECCOMP_RECORDER_NAMESPACE": namespace,
        "POD_ID": "rbac-audit-operator",
        # Ports on the host's loopback are shared with other tests; serve none.
        "SECCOMP_RECORDER_HEALTH_PORT": "0",
        "SECCOMP_RECORDER_METRICS_PORT": "0",
    })
    return variables


def roles_of(manifests: list[Manifest], suffix: str) -> tuple[list[Manifest], list[Manifest]]:
    """Return the ClusterRoles and Roles whose names end in `suffix`."""
    def named(kind: str) -> list[Manifest]:
        return [manifest for manifest in manifests
                if manifest["kind"] == kind and manifest["metadata"]["name"].endswith(suffix)]

    return named("ClusterRole"), named("Role")


class Scenario:
    """The API objects of the test and the clients that drive it (not recorded)."""

    def __init__(self, cluster: DevCluster, namespace: str) -> None:
        client = cluster.api_client()
        self.namespace = namespace
        self.core = kubernetes.client.CoreV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)

    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
                "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body, _preload_content=False)

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        return read_or_none(lambda: self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, _preload_content=False))

    def names(self, plural: str) -> list[str]:
        response: Any = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, _preload_content=False)
        return [item["metadata"]["name"] for item in json.loads(response.data)["items"]]

    def condition(self, plural: str, name: str, kind: str) -> bool:
        found = self.get(plural, name) or {}
        conditions = found.get("status", {}).get("conditions") or []
        return any(c["type"] == kind and c["status"] == "True" for c in conditions)

    def delete_all(self) -> None:
        for plural in ("seccomprecordings", "seccompprofiles"):
            for name in self.names(plural):
                try:
                    self.custom.delete_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, plural, name, _preload_content=False)
                except ApiException as error:
                    if error.status != 404:
                        raise


@pytest.fixture(name="audit_dir")
def audit_dir_fixture(tmp_path: Path) -> Path:
    require(os.geteuid() == 0, "mounting a bpffs and the agents' recorders need root")
    require(DEFAULT_OBJECT_PATH.is_file(), "the BPF object is not built: run `make bpf`")
    helm_binary()
    return tmp_path


@pytest.mark.devcluster(nodes=2)
def test_rules_allow_every_request(devcluster: DevCluster, audit_dir: Path) -> None:
    release = f"audit-{uuid.uuid4().hex[:6]}"
    manifests = render(
        "--set", f"image.agent.repository={UNRUNNABLE_AGENT}",
        "--set", "logging.level=DEBUG",
        "--set", "recorder.snapshotInterval=1",
        "--set", "recorder.profileUpdateInterval=1",
        "--set", "recorder.finalResultTimeout=30",
        release=release, namespace=release,
    )
    for manifest in manifests:
        if manifest["kind"] == "Deployment":
            manifest["spec"]["replicas"] = 0
    manifest_file = audit_dir / "rendered.yaml"
    manifest_file.write_text(yaml.safe_dump_all(manifests))
    scenario = Scenario(devcluster, release)
    namespace: Any = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": release}}
    scenario.core.create_namespace(namespace, _preload_content=False)
    kubectl(devcluster.kubeconfig_path, "apply", "-f", str(CHART / "crds"))
    kubectl(devcluster.kubeconfig_path, "apply", "-f", str(manifest_file))

    upstream = yaml.safe_load(devcluster.kubeconfig_path.read_text())["clusters"][0]["cluster"]["server"]
    operator_proxy, agent_proxy = RecordingProxy(upstream), RecordingProxy(upstream)
    operator_proxy.start()
    agent_proxy.start()
    processes: list[Process] = []
    base = {key: value for key, value in os.environ.items()
            if not key.startswith("SECCOMP_RECORDER_") and key != "KUBERNETES_SERVICE_HOST"}
    try:
        with bpf_filesystem(audit_dir / "bpffs") as bpffs:
            try:
                operator = Process(
                    [sys.executable, "-m", "seccomp_recorder.operator"],
                    {**base, **operator_environment(manifests, release), "KUBECONFIG": str(
                        proxied_kubeconfig(devcluster, operator_proxy, audit_dir / "operator.kubeconfig"))},
                    audit_dir / "operator.log",
                )
                processes.append(operator)
                agent_kubeconfig = proxied_kubeconfig(devcluster, agent_proxy, audit_dir / "agent.kubeconfig")
                agents = []
                for node in devcluster.nodes:
                    agents.append(Process(
                        [sys.executable, "-m", "seccomp_recorder.agent"],
                        {**base,
                         "SECCOMP_RECORDER_NODE_NAME": node.name,
                         "SECCOMP_RECORDER_KUBELET_ROOT": str(node.kubelet_root),
                         "SECCOMP_RECORDER_KUBECONFIG": str(agent_kubeconfig),
                         "SECCOMP_RECORDER_STATE_DIR": str(audit_dir / f"state-{node.name}"),
                         "SECCOMP_RECORDER_BPFFS_PIN_DIR": str(bpffs / node.name),
                         "SECCOMP_RECORDER_SNAPSHOT_INTERVAL": "1",
                         "SECCOMP_RECORDER_LOG_LEVEL": "DEBUG"},
                        audit_dir / f"agent-{node.name}.log",
                    ))
                processes.extend(agents)
                operator.wait_for_log("Resuming operations after the pause")
                for agent in agents:
                    agent.wait_for_log("Informers synced")
                run_scenario(devcluster, scenario)
            finally:
                scenario.delete_all()
                wait_for("the operator to release the profiles and recordings",
                         lambda: not scenario.names("seccompprofiles")
                         and not scenario.names("seccomprecordings"))
                codes = {process.log_path.name: process.stop() for process in processes}
    finally:
        operator_proxy.stop()
        agent_proxy.stop()
        kubectl(devcluster.kubeconfig_path, "delete", "--wait=false", "--ignore-not-found",
                "-f", str(manifest_file))
        scenario.core.delete_collection_namespaced_pod(release, grace_period_seconds=0,
                                                       _preload_content=False)
        scenario.core.delete_namespace(release, _preload_content=False)
    assert codes == {name: 0 for name in codes}

    operator_requests = [attributes(request) for request in operator_proxy.requests]
    agent_requests = [attributes(request) for request in agent_proxy.requests]
    # The scenario made the requests that matter, so the check below is not vacuous.
    assert made(operator_requests, "create", "seccompprofiles")
    assert made(operator_requests, "get", "deployments")
    assert made(operator_requests, "list", "pods")
    assert made(operator_requests, "patch", "clusterkopfpeerings")
    assert made(agent_requests, "create", "seccomprecordingresults")
    assert made(agent_requests, "patch", "seccompprofiles/status")
    assert made(agent_requests, "patch", "seccomprecordings/status")

    assert denied_requests(operator_proxy.requests, *roles_of(manifests, "-operator")) == []
    assert denied_requests(agent_proxy.requests, *roles_of(manifests, "-agent")) == []


def made(requests: list[Attributes | None], verb: str, resource: str) -> bool:
    return any(request is not None and (request.verb, request.resource) == (verb, resource)
               for request in requests)


def run_scenario(cluster: DevCluster, scenario: Scenario) -> None:
    """A profile installed on every node, then a recorded pod that becomes a profile."""
    scenario.create("seccompprofiles", "SeccompProfile", "by-hand", {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}],
    })
    wait_for("the profile on every node",
             lambda: (scenario.get("seccompprofiles", "by-hand") or {}).get("status", {}).get(
                 "phase") == "Installed")

    scenario.create("seccomprecordings", "SeccompRecording", "audit", {
        "podSelector": {"matchLabels": {"app": "audit"}},
    })
    wait_for("every node's recorder to attach",
             lambda: scenario.condition("seccomprecordings", "audit", "AgentsAttached"))
    pod: Any = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "audit", "namespace": scenario.namespace, "labels": {"app": "audit"}},
        "spec": {"restartPolicy": "Never", "nodeName": cluster.nodes[0].name, "containers": [
            {"name": "main", "image": "busybox", "command": ["/bin/sh", "-c", "echo recorded"]}]},
    }
    scenario.core.create_namespaced_pod(scenario.namespace, pod, _preload_content=False)

    def pod_succeeded() -> bool:
        response: Any = scenario.core.read_namespaced_pod("audit", scenario.namespace,
                                                          _preload_content=False)
        return bool(json.loads(response.data).get("status", {}).get("phase") == "Succeeded")

    wait_for("the recorded pod to finish", pod_succeeded)
    scenario.custom.patch_namespaced_custom_object(
        GROUP, VERSION, scenario.namespace, "seccomprecordings", "audit",
        {"spec": {"active": False}}, _content_type="application/merge-patch+json",
        _preload_content=False)
    wait_for("the recording to complete",
             lambda: scenario.condition("seccomprecordings", "audit", "Completed"))
    wait_for("the recorded profile on every node",
             lambda: (scenario.get("seccompprofiles", "audit-main") or {}).get("status", {}).get(
                 "phase") == "Installed")
