"""Start and stop a whole dev cluster: API server, N node processes, scheduler, controllers.

Used by `python -m seccomp_devcluster` (`make devcluster`) and by the `devcluster`
pytest fixture. Everything lives in one folder:

    <directory>/apiserver/kubeconfig        the kubeconfig to use (also `.kubeconfig_path`)
    <directory>/logs/                        container logs, served by `kubectl logs`
    <directory>/nodes/<name>/kubelet/        the node's kubelet root; Localhost profiles
                                             go in its seccomp/ folder
    <directory>/nodes/<name>/state/          runtime state and pod network namespaces
    <directory>/pki/                         the cluster's CA (pods' ca.crt) and the API
                                             relay's serving certificate
    <directory>/*.log                        output of each process

`stop` ends the node processes with SIGTERM (each stops its containers and cleans
up), then sweeps every node's state again in case a node crashed, unmounts anything
still mounted in the folder, and stops the API server. The scheduler and the
workload controllers (`seccomp_devcluster.controllers`) run in the launcher's process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

import kubernetes

from seccomp_devcluster.controllers.manager import ControllerManager
from seccomp_devcluster.node.cleanup import mounts_under, sweep_node_state
from seccomp_devcluster.node.podspec import DEFAULT_HOST_IMAGES
from seccomp_devcluster.node.settings import NodeSettings
from seccomp_devcluster.pki import ClusterPki, create_cluster_pki
from seccomp_devcluster.scheduler import RoundRobinScheduler, node_is_ready

logger = logging.getLogger(__name__)

PACKAGE_PARENT = Path(__file__).resolve().parent.parent
# Seconds to wait for the API server's kubeconfig and for each node to be Ready.
START_TIMEOUT = 30.0
# Seconds a node process gets to stop its containers after SIGTERM before SIGKILL.
STOP_TIMEOUT = 60.0


class ClusterError(RuntimeError):
    """The dev cluster failed to start; the message names the process and its log."""


@dataclass
class NodeProcess:
    """One node of the cluster: its folders and its process."""

    name: str
    kubelet_root: Path
    state_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def seccomp_dir(self) -> Path:
        """Where the node's kubelet reads Localhost profiles from."""
        return self.kubelet_root / "seccomp"


class DevCluster:
    """An API server emulator and `nodes` node stand-ins on this machine; needs root."""

    def __init__(self, directory: Path, nodes: int = 1, *, crash_loop_backoff: float = 10.0,
                 seccomp_default: bool = False, shutdown_grace_period: float = 2.0,
                 heartbeat_interval: float = 10.0, log_level: str = "INFO",
                 host_images: tuple[str, ...] = DEFAULT_HOST_IMAGES) -> None:
        if nodes < 1:
            raise ValueError(f"a dev cluster needs at least one node, not {nodes}")
        self.directory = directory.resolve()
        self.crash_loop_backoff = crash_loop_backoff
        self.seccomp_default = seccomp_default
        self.shutdown_grace_period = shutdown_grace_period
        self.heartbeat_interval = heartbeat_interval
        self.log_level = log_level
        self.host_images = host_images
        self.log_root = self.directory / "logs"
        self.pki = ClusterPki.in_directory(self.directory / "pki")
        self.nodes = [
            NodeProcess(name=f"node-{index}",
                        kubelet_root=self.directory / "nodes" / f"node-{index}" / "kubelet",
                        state_dir=self.directory / "nodes" / f"node-{index}" / "state",
                        log_path=self.directory / f"node-{index}.log")
            for index in range(1, nodes + 1)
        ]
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._scheduler: RoundRobinScheduler | None = None
        self._controllers: ControllerManager | None = None
        # Threads of the scheduler and the controllers, kept to check that they ended.
        self._component_threads: list[threading.Thread] = []
        self._api_client: kubernetes.client.ApiClient | None = None
        self._logs: list[IO[bytes]] = []

    @property
    def kubeconfig_path(self) -> Path:
        return self.directory / "apiserver" / "kubeconfig"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def apiserver_pid(self) -> int | None:
        """PID of the API server emulator's process, while it runs."""
        return None if self._apiserver is None else self._apiserver.pid

    def api_client(self) -> kubernetes.client.ApiClient:
        """Return a `kubernetes` client for the cluster (shared; closed by `stop`)."""
        if self._api_client is None:
            self._api_client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig_path))
        return self._api_client

    def running_threads(self) -> list[str]:
        """Return the names of this cluster's scheduler and controller threads still alive."""
        return [thread.name for thread in self._component_threads if thread.is_alive()]

    def node(self, name: str) -> NodeProcess:
        return next(node for node in self.nodes if node.name == name)

    # -- start -----------------------------------------------------------------------

    def _spawn(self, arguments: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PACKAGE_PARENT), environment.get("PYTHONPATH")]))
        log = log_path.open("ab")
        self._logs.append(log)
        return subprocess.Popen([sys.executable, "-m", *arguments], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=environment,
                                start_new_session=True)

    def start(self) -> None:
        """Start the API server, controllers, nodes and scheduler; stop everything on failure."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_root.mkdir(parents=True, exist_ok=True)
        try:
            create_cluster_pki(self.pki.ca_cert.parent)
            self._start_apiserver()
            self._controllers = ControllerManager(self.api_client())
            self._controllers.start()
            for index, node in enumerate(self.nodes):
                self._start_node(node, index)
            self._wait_for_nodes()
            self._scheduler = RoundRobinScheduler(self.api_client())
            self._scheduler.start()
        except BaseException:
            self.stop()
            raise
        logger.info("Dev cluster up: %d node(s), kubeconfig %s", len(self.nodes),
                    self.kubeconfig_path)

    def _start_apiserver(self) -> None:
        log_path = self.directory / "apiserver.log"
        self._apiserver = self._spawn(
            ["seccomp_devcluster.apiserver", "--state-dir", str(self.directory / "apiserver"),
             "--log-root", str(self.log_root), "--log-level", self.log_level], log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.kubeconfig_path.exists():
            if self._apiserver.poll() is not None:
                raise ClusterError(f"the API server exited with code {self._apiserver.returncode}"
                                   f"; see {log_path}")
            if time.monotonic() > deadline:
                raise ClusterError(f"the API server wrote no kubeconfig within {START_TIMEOUT} s"
                                   f"; see {log_path}")
            time.sleep(0.05)

    def _start_node(self, node: NodeProcess, index: int) -> None:
        node.process = self._spawn(
            ["seccomp_devcluster.node", "--kubeconfig", str(self.kubeconfig_path),
             "--node-name", node.name, "--kubelet-root", str(node.kubelet_root),
             "--state-dir", str(node.state_dir), "--log-root", str(self.log_root),
             "--pod-cidr", f"127.{10 + index}.0.0/16",
             "--crash-loop-backoff", str(self.crash_loop_backoff),
             "--heartbeat-interval", str(self.heartbeat_interval),
             "--shutdown-grace-period", str(self.shutdown_grace_period),
             "--log-level", self.log_level,
             "--tls-cert-file", str(self.pki.serving_cert),
             "--tls-private-key-file", str(self.pki.serving_key),
             "--root-ca-file", str(self.pki.ca_cert),
             *[argument for pattern in self.host_images
               for argument in ("--host-image", pattern)],
             *(["--seccomp-default"] if self.seccomp_default else [])],
            node.log_path)

    def _wait_for_nodes(self) -> None:
        core = kubernetes.client.CoreV1Api(self.api_client())
        deadline = time.monotonic() + START_TIMEOUT
        waiting = {node.name for node in self.nodes}
        while waiting:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise ClusterError(f"node {node.name} exited with code "
                                       f"{node.process.returncode}; see {node.log_path}")
            for name in sorted(waiting):
                try:
                    response = core.read_node(name, _preload_content=False)
                except kubernetes.client.exceptions.ApiException as error:
                    if error.status == 404:
                        continue
                    raise
                if node_is_ready(_json(response)):
                    waiting.discard(name)
            if waiting and time.monotonic() > deadline:
                raise ClusterError(f"nodes {sorted(waiting)} were not Ready within "
                                   f"{START_TIMEOUT} s; see their logs in {self.directory}")
            time.sleep(0.05)

    # -- stop ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop everything and remove every container, mount and cgroup the cluster made."""
        if self._scheduler is not None:
            self._component_threads += self._scheduler.threads
            self._scheduler.stop()
            self._scheduler = None
        if self._controllers is not None:
            self._component_threads += self._controllers.threads
            self._controllers.stop()
            self._controllers = None
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.error("Node %s did not stop within %s s; killing it", node.name,
                             STOP_TIMEOUT)
                node.process.kill()
                node.process.wait()
            if node.process.returncode != 0:
                logger.error("Node %s exited with code %s; see %s", node.name,
                             node.process.returncode, node.log_path)
            leftovers = sweep_node_state(self.node_settings(node))
            if leftovers:
                logger.error("Node %s left %s behind; removed them", node.name,
                             ", ".join(leftovers))
        if self.directory.exists():
            for mount_point in mounts_under(self.directory):
                logger.error("Unmounting leftover mount %s", mount_point)
                subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
        if self._api_client is not None:
            self._api_client.close()  # type: ignore[no-untyped-call]
            self._api_client = None
        if self._apiserver is not None and self._apiserver.poll() is None:
            self._apiserver.send_signal(signal.SIGTERM)
            try:
                self._apiserver.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.error("The API server did not stop; killing it")
                self._apiserver.kill()
                self._apiserver.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def node_settings(self, node: NodeProcess) -> NodeSettings:
        """Return the settings a node process runs with, as far as clean-up needs them."""
        return NodeSettings(node_name=node.name, kubelet_root=node.kubelet_root,
                            state_dir=node.state_dir, log_root=self.log_root)


def _json(response: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(response.data)
    return result
