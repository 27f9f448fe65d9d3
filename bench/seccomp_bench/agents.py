"""The node agent as the benchmark runs it: a BPF filesystem, an API server, agent processes.

Part 1 needs only the dev cluster's API server emulator (the agent watches
SeccompRecordings and its node's pods; no node has to run). Part 4 runs a whole
dev cluster. Either way the agents are real `python -m seccomp_recorder.agent`
processes, as the DaemonSet's pods would run them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from seccomp_bench import processes
from seccomp_bench.processes import BenchError

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[2]
CRD_DIR = REPOSITORY / "crds"
DEVCLUSTER_DIR = REPOSITORY / "devcluster"
GROUP = "seccomp-recorder.io"
VERSION = "v1alpha1"
# Seconds to wait for a process to report that it started, attached or detached.
START_TIMEOUT = 60.0


@contextmanager
def bpf_filesystem(mount_point: Path) -> Iterator[Path]:
    """Mount a BPF filesystem at `mount_point` for the agents' pins; unmount it afterwards."""
    mount_point.mkdir(parents=True, exist_ok=True)
    processes.run(["mount", "-t", "bpf", "bpf", str(mount_point)], timeout=30)
    try:
        yield mount_point
    finally:
        completed = subprocess.run(
            ["umount", str(mount_point)], capture_output=True, text=True, check=False, timeout=30
        )
        if completed.returncode != 0:
            logger.error("cannot unmount %s: %s", mount_point, completed.stderr.strip())


def python_environment() -> dict[str, str]:
    """Return this environment with the dev cluster's package on PYTHONPATH."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(DEVCLUSTER_DIR), environment.get("PYTHONPATH")])
    )
    return environment


@contextmanager
def api_server(state_dir: Path) -> Iterator[Path]:
    """Run the dev cluster's API server emulator alone; yield its kubeconfig path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = state_dir / "kubeconfig"
    server = processes.start(
        [
            sys.executable,
            "-m",
            "seccomp_devcluster.apiserver",
            "--state-dir",
            str(state_dir),
            "--log-root",
            str(state_dir / "logs"),
        ],
        log=state_dir / "apiserver.log",
        environment=python_environment(),
    )
    try:
        processes.wait_until(
            kubeconfig.exists, "the API server's kubeconfig", START_TIMEOUT, process=server
        )
        yield kubeconfig
    finally:
        processes.stop(server)


def api_client(kubeconfig: Path) -> kubernetes.client.ApiClient:
    client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return client


def apply_crds(client: kubernetes.client.ApiClient) -> None:
    """Create the project's CRDs from crds/*.yaml; those that exist are left as they are."""
    extensions = kubernetes.client.ApiextensionsV1Api(client)
    for path in sorted(CRD_DIR.glob("*.yaml")):
        body: Any = yaml.safe_load(path.read_text())
        try:
            extensions.create_custom_resource_definition(body, _preload_content=False)
        except ApiException as error:
            if error.status != 409:
                raise


def create_object(client: kubernetes.client.ApiClient, plural: str, body: dict[str, Any]) -> None:
    namespace = body["metadata"].get("namespace", "default")
    kubernetes.client.CustomObjectsApi(client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body, _preload_content=False
    )


def get_object(
    client: kubernetes.client.ApiClient, plural: str, name: str, namespace: str = "default"
) -> dict[str, Any] | None:
    try:
        response: Any = kubernetes.client.CustomObjectsApi(client).get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, _preload_content=False
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    found: dict[str, Any] = json.loads(response.data)
    return found


def list_objects(client: kubernetes.client.ApiClient, plural: str) -> list[dict[str, Any]]:
    response: Any = kubernetes.client.CustomObjectsApi(client).list_cluster_custom_object(
        GROUP, VERSION, plural, _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(response.data).get("items", [])
    return items


def delete_object(
    client: kubernetes.client.ApiClient, plural: str, name: str, namespace: str = "default"
) -> None:
    try:
        kubernetes.client.CustomObjectsApi(client).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, _preload_content=False
        )
    except ApiException as error:
        if error.status != 404:
            raise


def recording_body(name: str, labels: dict[str, str], namespace: str = "default") -> dict[str, Any]:
    """Return a SeccompRecording that records the pods with `labels`."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SeccompRecording",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": dict(labels)}},
    }


class Agent:
    """One `python -m seccomp_recorder.agent` process for one node."""

    def __init__(
        self, node_name: str, kubelet_root: Path, kubeconfig: Path, work_dir: Path, bpffs: Path
    ) -> None:
        self.node_name = node_name
        self.kubelet_root = kubelet_root
        self.kubeconfig = kubeconfig
        self.work_dir = work_dir
        self.pin_dir = bpffs / node_name
        self.log_path = work_dir / f"agent-{node_name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self) -> None:
        """Start the agent and wait until its informers are synced."""
        self.launch()
        self.wait_for_log("Informers synced")

    def launch(self) -> None:
        """Start the agent's process without waiting for it."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = processes.start(
            [
                sys.executable,
                "-m",
                "seccomp_recorder.agent",
                "--node-name",
                self.node_name,
                "--kubelet-root",
                str(self.kubelet_root),
                "--kubeconfig",
                str(self.kubeconfig),
                "--state-dir",
                str(self.work_dir / f"state-{self.node_name}"),
                "--bpffs-pin-dir",
                str(self.pin_dir),
            ],
            log=self.log_path,
            environment=python_environment(),
        )

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            return log.read().decode(errors="replace")

    def wait_for_log(self, text: str, timeout: float = START_TIMEOUT) -> None:
        """Wait until the agent has logged `text` since its start."""
        try:
            processes.wait_until(
                lambda: text in self.log(),
                f"agent of {self.node_name} logging {text!r}",
                timeout,
                process=self.process,
            )
        except BenchError as error:
            raise BenchError(f"{error}; its log is {self.log_path}") from error

    def bpf_link_fds(self) -> int:
        """Count the BPF links the agent process holds open (each keeps a program attached)."""
        if self.process is None:
            return 0
        count = 0
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            try:
                if os.readlink(fd) == "anon_inode:bpf_link":
                    count += 1
            except FileNotFoundError:
                continue
        return count

    def stop(self) -> None:
        if self.process is not None:
            status = processes.stop(self.process)
            if status != 0:
                logger.warning(
                    "agent of %s exited with %d; see %s", self.node_name, status, self.log_path
                )
            self.process = None
