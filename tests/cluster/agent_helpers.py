"""Run node agents against the dev cluster, and read what they installed and reported.

The dev cluster has no DaemonSet controller, so tests start one agent process per node
(`python -m seccomp_recorder.agent`) with the node's name and kubelet root, as the
DaemonSet's pod would run it. Each agent logs to its own file, which a failing test
prints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from kube_reads import read_or_none
from polling import poll
from seccomp_devcluster.cluster import DevCluster

REPOSITORY = Path(__file__).resolve().parents[2]
CRD_DIR = REPOSITORY / "crds"
GROUP = "seccomp-recorder.io"
VERSION = "v1alpha1"
PROFILES = "seccompprofiles"
# Seconds a test waits for an agent or the cluster to reach a state; generous, never
# asserted on.
PATIENCE = 60.0
# Finalizer that tests put on profiles to hold them in deletion, as the operator's does.
TEST_FINALIZER = "tests.seccomp-recorder.io/hold"


class AgentProcess:
    """One agent process for one node; `start` and `stop` may be called again to restart."""

    def __init__(
        self,
        node_name: str,
        kubelet_root: Path,
        kubeconfig: Path,
        work_dir: Path,
        extra_environment: dict[str, str] | None = None,
    ) -> None:
        self.node_name = node_name
        self.kubelet_root = kubelet_root
        self.kubeconfig = kubeconfig
        self.work_dir = work_dir
        self.log_path = work_dir / f"agent-{node_name}.log"
        self.extra_environment = extra_environment or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []

    @property
    def seccomp_dir(self) -> Path:
        return self.kubelet_root / "seccomp"

    def profile_path(self, name: str, namespace: str = "default") -> Path:
        return self.seccomp_dir / "seccomp-recorder" / namespace / f"{name}.json"

    def start(self) -> None:
        """Start the process and wait until its installer has synced its informers.

        A start that fails or times out stops the process before it raises.
        """
        self.work_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        environment = dict(os.environ)
        environment.update(
            {
                "SECCOMP_RECORDER_NODE_NAME": self.node_name,
                "SECCOMP_RECORDER_KUBELET_ROOT": str(self.kubelet_root),
                "SECCOMP_RECORDER_KUBECONFIG": str(self.kubeconfig),
                "SECCOMP_RECORDER_STATE_DIR": str(self.work_dir / f"state-{self.node_name}"),
                "SECCOMP_RECORDER_BPFFS_PIN_DIR": str(self.work_dir / f"bpf-{self.node_name}"),
                "SECCOMP_RECORDER_LOG_LEVEL": "DEBUG",
                **self.extra_environment,
            }
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "seccomp_recorder.agent"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        try:
            self.wait_for_log("Informers synced", offset)
        except BaseException:
            # A caller whose start raised does not stop the process, so it is stopped here,
            # or it would outlive the test.
            self.stop()
            raise

    def wait_for_log(self, text: str, offset: int = 0) -> None:
        deadline = time.monotonic() + PATIENCE
        while text not in self.log(offset):
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"agent of {self.node_name} exited with {self.process.returncode}:\n"
                    + self.log(offset)
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"agent of {self.node_name} never logged {text!r}")
            time.sleep(0.05)

    def log(self, offset: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stop(self) -> int:
        """Send SIGTERM, wait for the exit, and return the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.exit_codes.append(code)
        self.process = None
        return code

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def custom_api(cluster: DevCluster) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(cluster.api_client())


def apply_crds(cluster: DevCluster) -> None:
    """Create the project's CRDs from crds/*.yaml, or replace them when they exist."""
    extensions = kubernetes.client.ApiextensionsV1Api(cluster.api_client())
    for path in sorted(CRD_DIR.glob("*.yaml")):
        body: Any = yaml.safe_load(path.read_text())
        try:
            extensions.create_custom_resource_definition(body, _preload_content=False)
        except ApiException as error:
            if error.status != 409:
                raise
            current = json.loads(
                extensions.read_custom_resource_definition(
                    body["metadata"]["name"], _preload_content=False
                ).data
            )
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            extensions.replace_custom_resource_definition(
                body["metadata"]["name"], body, _preload_content=False
            )


def read_profile(cluster: DevCluster, name: str, namespace: str = "default") -> dict[str, Any] | None:
    return read_or_none(lambda: custom_api(cluster).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PROFILES, name, _preload_content=False
    ))


def create_profile(cluster: DevCluster, body: dict[str, Any]) -> dict[str, Any]:
    namespace = body["metadata"].get("namespace", "default")
    response: Any = custom_api(cluster).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PROFILES, body, _preload_content=False
    )
    created: dict[str, Any] = json.loads(response.data)
    return created


def delete_profile(cluster: DevCluster, name: str, namespace: str = "default") -> None:
    try:
        custom_api(cluster).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PROFILES, name, _preload_content=False
        )
    except ApiException as error:
        if error.status != 404:
            raise


def remove_finalizers(cluster: DevCluster, name: str, namespace: str = "default") -> None:
    try:
        custom_api(cluster).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PROFILES,
            name,
            {"metadata": {"finalizers": None}},
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
    except ApiException as error:
        if error.status != 404:
            raise


def delete_all_profiles(cluster: DevCluster) -> None:
    """Delete every SeccompProfile, finalizers and all, and wait until none is left."""
    response: Any = custom_api(cluster).list_cluster_custom_object(
        GROUP, VERSION, PROFILES, _preload_content=False
    )
    for item in json.loads(response.data).get("items", []):
        metadata = item["metadata"]
        if metadata.get("finalizers"):
            remove_finalizers(cluster, metadata["name"], metadata["namespace"])
        delete_profile(cluster, metadata["name"], metadata["namespace"])


def node_state(profile: dict[str, Any] | None, node: str) -> dict[str, Any] | None:
    if profile is None:
        return None
    entry = ((profile.get("status") or {}).get("nodeStatuses") or {}).get(node)
    return entry if isinstance(entry, dict) else None


def wait_for(description: str, condition: Callable[[], Any], patience: float = PATIENCE) -> Any:
    """Poll `condition` until it returns a true value, and return that value."""
    return poll(description, condition, patience)


def wait_for_node_state(
    cluster: DevCluster, name: str, node: str, state: str, namespace: str = "default"
) -> dict[str, Any]:
    """Wait until the profile's status entry of `node` has `state`; return the entry."""

    def entry_in_state() -> dict[str, Any] | None:
        entry = node_state(read_profile(cluster, name, namespace), node)
        return entry if entry is not None and entry.get("state") == state else None

    found: dict[str, Any] = wait_for(f"{namespace}/{name} to be {state} on {node}", entry_in_state)
    return found


def events_about(cluster: DevCluster, name: str, namespace: str = "default") -> list[dict[str, Any]]:
    """Return the Events whose involvedObject is the SeccompProfile `namespace/name`."""
    core = kubernetes.client.CoreV1Api(cluster.api_client())
    response: Any = core.list_namespaced_event(namespace, _preload_content=False)
    return [
        item
        for item in json.loads(response.data).get("items", [])
        if item.get("involvedObject", {}).get("kind") == "SeccompProfile"
        and item["involvedObject"].get("name") == name
    ]


def localhost(profile: str) -> dict[str, dict[str, str]]:
    return {"seccompProfile": {"type": "Localhost", "localhostProfile": profile}}
