"""The chart installed on the dev cluster: the operator starts and deploys the agents.

The test renders the chart with `helm template` and applies the CRDs, then the other
manifests, with kubectl, in the order `helm install` uses. The dev cluster runs
`seccomp-recorder*` images on the host's root with the project's venv, so the operator
and agent pods run the working tree's code. The test checks that two operator replicas
run with one of them active, and that the operator's DaemonSet puts a ready agent on
every node. It then checks that a SeccompProfile reaches both nodes, and that a
recording attaches the recorders, which pin their maps in a bpffs. Deleting the release's
objects at the end must also remove the agents, through the DaemonSet's owner.

The machine's /sys/fs/bpf has no bpffs mounted, so the test mounts a private one and
points the chart's agent.bpffsPath at it; it is unmounted at the end.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from chart_helpers import (
    CHART,
    DAEMONSET,
    Manifest,
    bpf_filesystem,
    helm_binary,
    kubectl,
    render,
    wait_for,
)
from kubernetes.client.exceptions import ApiException

from kube_reads import read_or_none
from prerequisites import require
from seccomp_devcluster.cluster import DevCluster
from seccomp_recorder.recorder.recorder import DEFAULT_OBJECT_PATH

pytestmark = pytest.mark.cluster

GROUP, VERSION = "seccomp-recorder.io", "v1alpha1"
RESUMING = "Resuming operations after the pause"
PAUSING = "Pausing operations in favour of"
class Installation:
    """The chart rendered into one namespace of the dev cluster, with API helpers."""

    def __init__(self, cluster: DevCluster, work_dir: Path, bpffs: Path) -> None:
        self.cluster = cluster
        self.bpffs = bpffs
        self.release = f"chart-{uuid.uuid4().hex[:6]}"
        self.namespace = self.release
        self.manifests = render(
            "--set", f"agent.bpffsPath={bpffs}",
            "--set", "logging.level=DEBUG",
            "--set", "recorder.snapshotInterval=1",
            "--set", "recorder.profileUpdateInterval=1",
            release=self.release, namespace=self.namespace,
        )
        self.manifest_file = work_dir / "rendered.yaml"
        self.manifest_file.write_text(yaml.safe_dump_all(self.manifests))
        client = cluster.api_client()
        self.core = kubernetes.client.CoreV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)
        # Pods the test started itself, deleted before the release.
        self.test_pods: list[str] = []

    def only(self, kind: str) -> Manifest:
        (found,) = [manifest for manifest in self.manifests if manifest["kind"] == kind]
        return found

    def operator_variable(self, name: str) -> str:
        container = self.only("Deployment")["spec"]["template"]["spec"]["containers"][0]
        (value,) = [entry["value"] for entry in container["env"] if entry["name"] == name]
        return str(value)

    def install(self) -> None:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        self.core.create_namespace(namespace, _preload_content=False)  # type: ignore[arg-type]
        kubectl(self.cluster.kubeconfig_path, "apply", "-f", str(CHART / "crds"))
        kubectl(self.cluster.kubeconfig_path, "apply", "-f", str(self.manifest_file))

    def uninstall(self) -> None:
        """Delete the test's objects and the release, then the namespace.

        The operator's Deployment owns the agent DaemonSet, so deleting the release's
        objects is enough to remove the agents. Should that fail, the DaemonSet is deleted
        anyway before the assertion fails.
        """
        for pod in self.test_pods:
            try:
                self.core.delete_namespaced_pod(pod, self.namespace, grace_period_seconds=0,
                                                _preload_content=False)
            except ApiException as error:
                if error.status != 404:
                    raise
        for plural in ("seccomprecordings", "seccompprofiles"):
            for item in self.list_custom(plural):
                self.delete_custom(plural, item["metadata"]["name"])
        wait_for("the profiles and recordings to be released", self.no_custom_objects, 60)
        kubectl(self.cluster.kubeconfig_path, "delete", "--wait=false", "--ignore-not-found", "-f", str(self.manifest_file))
        try:
            wait_for("the garbage collector to delete the agent DaemonSet",
                     lambda: self.daemonset() is None, 60)
        finally:
            try:
                self.apps.delete_namespaced_daemon_set(DAEMONSET, self.namespace,
                                                       _preload_content=False)
            except ApiException as error:
                if error.status != 404:
                    raise
            wait_for("the release's pods to be gone", lambda: not self.pods())
            self.core.delete_namespace(self.namespace, _preload_content=False)

    def no_custom_objects(self) -> bool:
        return not any(self.list_custom(plural) for plural in ("seccomprecordings", "seccompprofiles"))

    # -- reads and writes ----------------------------------------------------------------

    def pods(self, component: str | None = None) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/component={component}" if component else None
        response: Any = self.core.list_namespaced_pod(
            self.namespace, label_selector=selector, _preload_content=False
        )
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return items

    def ready_pods(self, component: str, count: int) -> list[dict[str, Any]] | None:
        """Return the ready pods of `component` when there are `count` of them, else None."""
        found = [pod for pod in self.pods(component) if ready(pod)]
        return found if len(found) == count else None

    def describe(self, component: str) -> str:
        """Summarize the pods of `component` for a failure message: states and log tails."""
        lines = []
        for pod in self.pods(component):
            name = pod["metadata"]["name"]
            status = pod.get("status") or {}
            states = [
                f"{container['name']}: {json.dumps(container.get('state'))}"
                for container in status.get("containerStatuses") or []
            ]
            lines.append(f"pod {name}: phase {status.get('phase')}; {'; '.join(states)}")
            try:
                tail = self.log(name).splitlines()[-15:]
            except ApiException as error:
                tail = [f"(no log: {error.reason})"]
            lines.extend(f"  {line}" for line in tail)
        return "\n".join(lines) or f"no {component} pods"

    def log(self, pod: str) -> str:
        text: str = self.core.read_namespaced_pod_log(pod, self.namespace)
        return text

    def active_replicas(self, pods: list[str]) -> list[str]:
        """Return the replicas whose last peering decision was to resume.

        A replica that started before the other's first keep-alive arrived resumes, then
        pauses once it reads the keep-alive of a peer with a higher priority.
        """
        active = []
        for pod in pods:
            log = self.log(pod)
            if log.rfind(RESUMING) > log.rfind(PAUSING):
                active.append(pod)
        return active

    def keep_alives(self) -> dict[str, Any]:
        """Return the keep-alives in the release's peering object, by replica identity."""
        name = self.only("ClusterKopfPeering")["metadata"]["name"]
        response: Any = self.custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", name, _preload_content=False
        )
        status: dict[str, Any] = json.loads(response.data).get("status") or {}
        return status

    def daemonset(self) -> dict[str, Any] | None:
        return read_or_none(lambda: self.apps.read_namespaced_daemon_set(
            DAEMONSET, self.namespace, _preload_content=False
        ))

    def list_custom(self, plural: str) -> list[dict[str, Any]]:
        response: Any = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, _preload_content=False
        )
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return items

    def get_custom(self, plural: str, name: str) -> dict[str, Any]:
        response: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, _preload_content=False
        )
        found: dict[str, Any] = json.loads(response.data)
        return found

    def custom_in_phase(self, plural: str, name: str, phase: str) -> dict[str, Any] | None:
        found = self.get_custom(plural, name)
        return found if found.get("status", {}).get("phase") == phase else None

    def create_custom(self, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body, _preload_content=False
        )

    def find_custom_in_phase(self, plural: str, name: str, phase: str) -> dict[str, Any] | None:
        """Return the object when it exists and is in `phase`, else None."""
        found = read_or_none(lambda: self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, _preload_content=False
        ))
        return found if (found or {}).get("status", {}).get("phase") == phase else None

    def patch_custom(self, plural: str, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, patch, _preload_content=False
        )

    def run_pod(self, name: str, labels: dict[str, str], script: str) -> None:
        """Start a busybox pod that runs `script` once."""
        body: Any = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "main", "image": "busybox", "command": ["/bin/sh", "-c", script]}
                ],
            },
        }
        self.test_pods.append(name)
        self.core.create_namespaced_pod(self.namespace, body, _preload_content=False)

    def pod_phase(self, name: str) -> str | None:
        response: Any = self.core.read_namespaced_pod(name, self.namespace, _preload_content=False)
        phase: str | None = json.loads(response.data).get("status", {}).get("phase")
        return phase

    def delete_custom(self, plural: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _preload_content=False
            )
        except ApiException as error:
            if error.status != 404:
                raise


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def has_condition(obj: dict[str, Any], kind: str) -> bool:
    conditions = obj.get("status", {}).get("conditions") or []
    return any(c["type"] == kind and c["status"] == "True" for c in conditions)


@pytest.fixture(name="installation")
def installation_fixture(devcluster: DevCluster, tmp_path: Path) -> Iterator[Installation]:
    require(os.geteuid() == 0, "mounting a bpffs and the agents' recorders need root")
    require(DEFAULT_OBJECT_PATH.is_file(), "the BPF object is not built: run `make bpf`")
    helm_binary()
    with bpf_filesystem(tmp_path / "bpffs") as bpffs:
        installation = Installation(devcluster, tmp_path, bpffs)
        installation.install()
        try:
            yield installation
        finally:
            installation.uninstall()


@pytest.mark.devcluster(nodes=2)
def test_chart_runs_operator_and_agents(devcluster: DevCluster, installation: Installation) -> None:
    nodes = sorted(node.name for node in devcluster.nodes)
    replicas = installation.only("Deployment")["spec"]["replicas"]
    assert replicas == 2

    # Both operator replicas become ready: the probes reach kopf's liveness endpoint.
    try:
        operators = wait_for("both operator replicas to be ready",
                             lambda: installation.ready_pods("operator", replicas))
    except AssertionError as error:
        raise AssertionError(f"{error}\n{installation.describe('operator')}") from None
    names = sorted(pod["metadata"]["name"] for pod in operators)

    # The operator creates the agent DaemonSet, owned by the operator's Deployment, and
    # every node gets a ready agent that runs as the chart's agent ServiceAccount.
    daemonset = wait_for("the agent DaemonSet", installation.daemonset)
    (owner,) = daemonset["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Deployment", installation.only("Deployment")["metadata"]["name"])
    agents = wait_for("a ready agent on every node",
                      lambda: installation.ready_pods("agent", len(nodes)))
    assert sorted(pod["spec"]["nodeName"] for pod in agents) == nodes
    expected_account = installation.operator_variable("SECCOMP_RECORDER_AGENT_SERVICE_ACCOUNT")
    assert {pod["spec"]["serviceAccountName"] for pod in agents} == {expected_account}

    # Both replicas keep their keep-alive in the release's peering object, and exactly
    # one of them ends up resumed from the initial pause.
    wait_for("both replicas' keep-alives", lambda: sorted(installation.keep_alives()) == names)
    wait_for("exactly one active replica", lambda: len(installation.active_replicas(names)) == 1)

    # A profile reaches every node through the agents.
    installation.create_custom("seccompprofiles", "SeccompProfile", "chart-check", {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}],
    })
    profile = wait_for("the profile on every node",
                       lambda: installation.custom_in_phase("seccompprofiles", "chart-check",
                                                            "Installed"))
    assert profile["status"]["nodes"] == f"{len(nodes)}/{len(nodes)}"
    for node in devcluster.nodes:
        path = node.seccomp_dir / "seccomp-recorder" / installation.namespace / "chart-check.json"
        assert path.is_file()

    # A recording attaches the recorder on every node, which pins it in the bpffs.
    installation.create_custom("seccomprecordings", "SeccompRecording", "chart-check", {
        "podSelector": {"matchLabels": {"app": "chart-check"}},
    })
    wait_for("every node's recorder to attach",
             lambda: has_condition(installation.get_custom("seccomprecordings", "chart-check"),
                                   "AgentsAttached"))
    for node_name in nodes:
        pins = installation.bpffs / "seccomp-recorder" / node_name
        assert pins.is_dir()
        assert any(pins.iterdir())

    # A labelled pod is recorded through the chart's operator and agents, and once the
    # recording stops its profile is installed on every node.
    installation.run_pod("chart-check", {"app": "chart-check"}, "echo hello > /tmp/out && cat /tmp/out")
    wait_for("the recorded pod to succeed", lambda: installation.pod_phase("chart-check") == "Succeeded")
    installation.patch_custom("seccomprecordings", "chart-check", {"spec": {"active": False}})
    recorded = wait_for("the recorded profile on every node",
                        lambda: installation.find_custom_in_phase("seccompprofiles", "chart-check-main",
                                                                  "Installed"))
    assert recorded["status"]["nodes"] == f"{len(nodes)}/{len(nodes)}"
    allowed = {name for rule in recorded["spec"]["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
               for name in rule["names"]}
    assert {"execve", "openat", "write"} <= allowed
    assert "mkdir" not in allowed
