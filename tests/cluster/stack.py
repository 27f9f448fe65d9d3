"""The whole product on the dev cluster: CRDs, one agent per node, the operator, pods.

Used by the end-to-end tests: a test applies a SeccompRecording, runs labelled pods with
real containers, and reads the SeccompProfiles the operator makes of the agents'
results. Agents pin their recorder on a bpffs mounted for the test and unmounted after.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import agent_helpers
from agent_helpers import AgentProcess, apply_crds
from kubernetes.client.exceptions import ApiException
from operator_helpers import Kube, OperatorProcess, TestNamespace, unique

from loopback import LOOPBACK, free_port
from seccomp_devcluster.cluster import DevCluster

PROFILES = "seccompprofiles"
RECORDINGS = "seccomprecordings"
RESULTS = "seccomprecordingresults"
# Seconds a test waits for a state; generous, because nothing here is a timing claim.
PATIENCE = 90.0


def wait_for(description: str, condition: Callable[[], Any], patience: float = PATIENCE) -> Any:
    """Poll `condition` until it returns a true value, and return that value."""
    return agent_helpers.wait_for(description, condition, patience)


@contextmanager
def bpf_filesystem(directory: Path) -> Iterator[Path]:
    """Mount a private bpffs at `directory` for the agents' pins; unmount it afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "bpf", "bpf", str(directory)], check=True)
    try:
        yield directory
    finally:
        # Pins left by an agent killed mid-test would keep programs attached.
        for pin in directory.rglob("*"):
            if pin.is_file() and pin.name.startswith(("link-", "map-")):
                pin.unlink(missing_ok=True)
        subprocess.run(["umount", str(directory)], check=False)


class Stack:
    """The operator and the agents of one test, with helpers to drive pods and recordings."""

    def __init__(self, cluster: DevCluster, work_dir: Path, bpffs: Path) -> None:
        self.cluster = cluster
        self.kube = Kube(cluster)
        self.namespace_object = TestNamespace(self.kube, "e2e")
        self.namespace = self.namespace_object.name
        self.system = TestNamespace(self.kube, "e2esys")
        self.work_dir = work_dir
        # Each process serves its metrics on a port of its own on the loopback address.
        self.metrics_ports = {"operator": free_port()}
        self.agents = []
        for node in cluster.nodes:
            self.metrics_ports[node.name] = free_port()
            environment = {
                "SECCOMP_RECORDER_BPFFS_PIN_DIR": str(bpffs / node.name),
                "SECCOMP_RECORDER_SNAPSHOT_INTERVAL": "1",
                "SECCOMP_RECORDER_METRICS_PORT": str(self.metrics_ports[node.name]),
                "SECCOMP_RECORDER_METRICS_ADDRESS": LOOPBACK,
            }
            self.agents.append(
                AgentProcess(
                    node.name, node.kubelet_root, cluster.kubeconfig_path, work_dir / "agents",
                    extra_environment=environment,
                )
            )
        self.operator = OperatorProcess(
            cluster.kubeconfig_path,
            work_dir / "operator.log",
            {
                "AGENT_IMAGE": "seccomp-recorder:dev",
                "NAMESPACE": self.system.name,
                "LOG_LEVEL": "DEBUG",
                "PROFILE_UPDATE_INTERVAL": "1",
                "FINAL_RESULT_TIMEOUT": "60",
                "METRICS_PORT": str(self.metrics_ports["operator"]),
                "METRICS_ADDRESS": LOOPBACK,
            },
        )

    def start(self) -> None:
        for agent in self.agents:
            agent.start()
        self.operator.start()

    def stop(self) -> dict[str, int]:
        """Delete the test's objects and stop every process; return the non-zero exit codes."""
        self.namespace_object.delete()
        codes = {"operator": self.operator.stop()} if self.operator.process else {}
        for agent in self.agents:
            if agent.process is not None:
                codes[f"agent {agent.node_name}"] = agent.stop()
        self.system.delete()
        return {who: code for who, code in codes.items() if code != 0}

    # -- objects -------------------------------------------------------------------------

    def create_recording(self, name: str, spec: dict[str, Any]) -> None:
        self.kube.create(
            RECORDINGS,
            {
                "apiVersion": "seccomp-recorder.io/v1alpha1",
                "kind": "SeccompRecording",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": spec,
            },
        )

    def recording(self, name: str) -> dict[str, Any]:
        found = self.kube.get(RECORDINGS, self.namespace, name)
        assert found is not None, f"recording {name} is gone"
        return found

    def wait_until_recording(self, name: str) -> None:
        """Wait until every node's recorder is attached, so new containers are recorded whole."""

        def attached() -> bool:
            conditions = self.recording(name).get("status", {}).get("conditions", [])
            return any(
                c["type"] == "AgentsAttached" and c["status"] == "True" for c in conditions
            )

        wait_for(f"the agents to attach for recording {name}", attached)

    def stop_recording(self, name: str) -> None:
        self.kube.patch(RECORDINGS, self.namespace, name, {"spec": {"active": False}})

    def wait_until_completed(self, name: str) -> dict[str, Any]:
        def completed() -> dict[str, Any] | None:
            recording = self.recording(name)
            conditions = recording.get("status", {}).get("conditions", [])
            done = any(c["type"] == "Completed" and c["status"] == "True" for c in conditions)
            return recording if done else None

        found: dict[str, Any] = wait_for(f"recording {name} to complete", completed)
        return found

    def profile(self, name: str) -> dict[str, Any] | None:
        return self.kube.get(PROFILES, self.namespace, name)

    def profiles(self) -> dict[str, dict[str, Any]]:
        return {p["metadata"]["name"]: p for p in self.kube.list(PROFILES, self.namespace)}

    def allowed(self, name: str) -> set[str]:
        profile = self.profile(name)
        assert profile is not None, f"profile {name} does not exist"
        return {
            syscall
            for rule in profile["spec"]["syscalls"]
            if rule["action"] == "SCMP_ACT_ALLOW"
            for syscall in rule["names"]
        }

    def wait_for_profile(self, name: str, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        def matching() -> dict[str, Any] | None:
            profile = self.profile(name)
            return profile if profile is not None and condition(profile) else None

        found: dict[str, Any] = wait_for(f"profile {name}", matching)
        return found

    def wait_until_installed(self, name: str) -> dict[str, Any]:
        return self.wait_for_profile(
            name, lambda p: p.get("status", {}).get("phase") == "Installed"
        )

    # -- pods ----------------------------------------------------------------------------

    def run_pod(
        self,
        name: str,
        containers: list[dict[str, Any]],
        *,
        labels: dict[str, str] | None = None,
        init_containers: list[dict[str, Any]] | None = None,
        node: str | None = None,
        security_context: dict[str, Any] | None = None,
    ) -> None:
        spec: dict[str, Any] = {"restartPolicy": "Never", "containers": containers}
        if init_containers:
            spec["initContainers"] = init_containers
        if node:
            spec["nodeName"] = node
        if security_context:
            spec["securityContext"] = security_context
        body: Any = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels or {}},
            "spec": spec,
        }
        self.kube.core.create_namespaced_pod(self.namespace, body, _preload_content=False)

    def pod(self, name: str) -> dict[str, Any]:
        response: Any = self.kube.core.read_namespaced_pod(name, self.namespace, _preload_content=False)
        found: dict[str, Any] = json.loads(response.data)
        return found

    def wait_for_phase(self, name: str, *phases: str) -> dict[str, Any]:
        def in_phase() -> dict[str, Any] | None:
            pod = self.pod(name)
            return pod if pod.get("status", {}).get("phase") in phases else None

        try:
            found: dict[str, Any] = wait_for(f"pod {name} to reach {'/'.join(phases)}", in_phase)
        except AssertionError as error:
            raise AssertionError(f"{error}; its status: {self.pod(name).get('status')}") from None
        return found

    def logs(self, pod: str, container: str) -> str:
        text: str = self.kube.core.read_namespaced_pod_log(pod, self.namespace, container=container)
        return text

    def delete_pod(self, name: str) -> None:
        try:
            self.kube.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        except ApiException as error:
            if error.status != 404:
                raise


def busybox(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "command": ["/bin/sh", "-c", script], **extra}


def localhost(namespace: str, profile: str) -> dict[str, Any]:
    return {
        "seccompProfile": {
            "type": "Localhost",
            "localhostProfile": f"seccomp-recorder/{namespace}/{profile}.json",
        }
    }


__all__ = ["Stack", "apply_crds", "bpf_filesystem", "busybox", "localhost", "unique", "wait_for"]
