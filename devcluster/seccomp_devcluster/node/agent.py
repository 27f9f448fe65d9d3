"""The node stand-in's API side: Node registration, heartbeat, pod watch, pod removal.

`NodeAgent` talks to the API server only through the official `kubernetes` client,
as a real kubelet does through client-go. It registers its Node and refreshes the
Ready condition every `heartbeat_interval` seconds. It lists and watches the pods
bound to it (field selector `spec.nodeName`) and hands each pod to a `PodWorker`.
Objects are handled as the API's JSON (`_preload_content=False`), so fields that
the client's models lack are kept.

NOTE: the heartbeat is the Node status only; no Lease in kube-node-lease is kept.

Scheduling is not done here: pods arrive with `spec.nodeName` set, by their
creator or by the dev cluster's scheduler (`seccomp_devcluster.scheduler`).

In-cluster API access: the node runs one `ApiRelay` (`relay.py`) that forwards TLS
connections from its pods to the API server named in its kubeconfig. Its serving
certificate and the CA that pods get as `ca.crt` come from the node's settings (the
launcher shares one CA per cluster), or are made in the node's state folder.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
import urllib.parse
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from seccomp_devcluster import pki
from seccomp_devcluster.kube import WATCH_TIMEOUT, list_and_watch
from seccomp_devcluster.node.cleanup import sweep_node_state
from seccomp_devcluster.node.relay import ApiRelay
from seccomp_devcluster.node.settings import NodeSettings, PodAddresses
from seccomp_devcluster.node.status import now
from seccomp_devcluster.node.volumes import ServiceAccountFiles
from seccomp_devcluster.node.worker import PodWorker

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
# Annotation on the Node: the node's kubelet root, so tests and agents find its seccomp dir.
KUBELET_ROOT_ANNOTATION = "devcluster.seccomp-recorder.io/kubelet-root"
GO_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


class KubernetesReporter:
    """PodReporter over the Kubernetes API, as the kubelet's status manager writes."""

    def __init__(self, core: kubernetes.client.CoreV1Api) -> None:
        self.core = core

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Read a ConfigMap, Secret or ServiceAccount ("configmaps"...); None if absent."""
        readers = {"configmaps": self.core.read_namespaced_config_map,
                   "secrets": self.core.read_namespaced_secret,
                   "serviceaccounts": self.core.read_namespaced_service_account}
        try:
            response: Any = readers[kind](name, namespace, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        found: dict[str, Any] = json.loads(response.data)
        return found

    def write_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self.core.patch_namespaced_pod_status(
                name, namespace, {"status": status}, _content_type=MERGE_PATCH,
                _preload_content=False)
        except ApiException as error:
            if error.status != 404:  # The pod is already gone; nothing to report.
                raise

    def annotate(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self.core.patch_namespaced_pod(
            name, namespace, {"metadata": {"annotations": annotations}},
            _content_type=MERGE_PATCH, _preload_content=False)

    def remove(self, namespace: str, name: str, uid: str) -> None:
        body = kubernetes.client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=kubernetes.client.V1Preconditions(uid=uid))
        try:
            self.core.delete_namespaced_pod(name, namespace, body=body, grace_period_seconds=0,
                                            _preload_content=False)
        except ApiException as error:
            if error.status != 404:
                raise


def node_object(settings: NodeSettings) -> dict[str, Any]:
    architecture = GO_ARCHITECTURES.get(platform.machine(), platform.machine())
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": settings.node_name,
            "labels": {"kubernetes.io/hostname": settings.node_name,
                       "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": architecture,
                       "node.kubernetes.io/instance-type": "seccomp-devcluster"},
            "annotations": {KUBELET_ROOT_ANNOTATION: str(settings.kubelet_root)},
        },
        "spec": {},
    }


def node_status(settings: NodeSettings, ready: bool, transition: str) -> dict[str, Any]:
    heartbeat = now()
    memory_kib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    resources = {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib}Ki", "pods": "110",
                 "ephemeral-storage": "10Gi"}

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": heartbeat, "lastTransitionTime": transition}

    return {
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                      "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                      "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID",
                      "kubelet has sufficient PID available"),
            condition("Ready", "True" if ready else "Unknown",
                      "KubeletReady" if ready else "NodeStatusUnknown",
                      "kubelet is posting ready status" if ready else "Kubelet stopped."),
        ],
        "addresses": [{"type": "InternalIP", "address": settings.node_ip},
                      {"type": "Hostname", "address": settings.node_name}],
        "capacity": resources,
        "allocatable": resources,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "architecture": GO_ARCHITECTURES.get(platform.machine(), platform.machine()),
            "operatingSystem": "linux",
            "kernelVersion": platform.release(),
            "osImage": "seccomp-recorder dev cluster",
            "containerRuntimeVersion": "runc://devcluster",
            "kubeletVersion": "v1.32.0-devcluster",
            "kubeProxyVersion": "",
            "machineID": "", "systemUUID": "", "bootID": "",
        },
    }


class NodeAgent:
    """One simulated node: registers itself, runs its pods, and cleans up on stop."""

    def __init__(self, settings: NodeSettings, api_client: kubernetes.client.ApiClient, *,
                 shutdown_grace_period: float = 2.0) -> None:
        self.settings = settings
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.reporter = KubernetesReporter(self.core)
        self.addresses = PodAddresses(settings.pod_cidr)
        self.shutdown_grace_period = shutdown_grace_period
        self.workers: dict[str, PodWorker] = {}
        self._workers_lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready_since = now()
        self._threads: list[threading.Thread] = []
        self.relay: ApiRelay | None = None
        self.service_account: ServiceAccountFiles | None = None

    # -- node object ----------------------------------------------------------------

    def register(self) -> None:
        """Create the Node (or update an existing one) and mark it Ready."""
        try:
            node = kubernetes.client.V1Node.from_dict(node_object(self.settings))
            assert node is not None
            self.core.create_node(node, _preload_content=False)
            logger.info("Registered node %s", self.settings.node_name)
        except ApiException as error:
            if error.status != 409:
                raise
            self.core.patch_node(self.settings.node_name, node_object(self.settings),
                                 _content_type=MERGE_PATCH, _preload_content=False)
            logger.info("Node %s was registered before; updated it", self.settings.node_name)
        self._write_node_status(ready=True)

    def _write_node_status(self, *, ready: bool) -> None:
        status = node_status(self.settings, ready, self._ready_since)
        self.core.patch_node_status(self.settings.node_name, {"status": status},
                                    _content_type=MERGE_PATCH, _preload_content=False)

    def _heartbeat(self) -> None:
        while not self._stopping.wait(self.settings.heartbeat_interval):
            try:
                self._write_node_status(ready=True)
            except (ApiException, urllib3.exceptions.HTTPError) as error:
                logger.warning("Node heartbeat failed: %s", error)

    # -- pods ------------------------------------------------------------------------

    def handle_pod(self, pod: dict[str, Any], event: str = "ADDED") -> None:
        """Start, stop or ignore a worker for one version of a pod bound to this node."""
        metadata = pod["metadata"]
        if pod.get("spec", {}).get("nodeName") != self.settings.node_name:
            return
        uid = metadata["uid"]
        key = f"{metadata['namespace']}/{metadata['name']}"
        with self._workers_lock:
            worker = self.workers.get(uid)
            if event == "DELETED":
                if worker is not None and worker.request_stop(0, deleted=False):
                    logger.info("[%s] Pod was removed; killing its containers", key)
                return
            if metadata.get("deletionTimestamp"):
                grace = float(metadata.get("deletionGracePeriodSeconds") or 0)
                if worker is None:
                    logger.info("[%s] Pod is being deleted and has no containers here", key)
                    self._remove_later(pod)
                elif worker.request_stop(grace, deleted=True):
                    logger.info("[%s] Pod is being deleted; stopping it within %g s", key,
                                grace)
                return
            if worker is not None or self._stopping.is_set():
                return
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return  # Finished before this node started; nothing to run again.
            worker = PodWorker(pod, self.settings, self.reporter, self.addresses,
                               lookup=self.reporter.read, relay=self.relay,
                               service_account=self.service_account)
            self.workers[uid] = worker
        logger.info("[%s] Starting pod", key)
        worker.start()

    def _remove_later(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]

        def remove() -> None:
            try:
                self.reporter.remove(metadata["namespace"], metadata["name"], metadata["uid"])
            except (ApiException, urllib3.exceptions.HTTPError) as error:
                logger.error("[%s/%s] Removing the pod object failed: %s",
                             metadata["namespace"], metadata["name"], error)

        threading.Thread(target=remove, daemon=True).start()

    def _list_and_watch(self) -> None:
        def handle(event: str, pod: dict[str, Any]) -> None:
            self.handle_pod(pod, event)

        list_and_watch(self.core.list_pod_for_all_namespaces, handle, self._stopping,
                       field_selector=f"spec.nodeName={self.settings.node_name}")

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        (self.settings.kubelet_root / "seccomp").mkdir(parents=True, exist_ok=True)
        self.settings.log_root.mkdir(parents=True, exist_ok=True)
        self._start_relay()
        self.register()
        for target, name in ((self._heartbeat, "heartbeat"), (self._list_and_watch, "watch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _start_relay(self) -> None:
        """Start the API relay toward the API server of the node's kubeconfig."""
        settings = self.settings
        cert, key, ca = (settings.tls_cert_file, settings.tls_private_key_file,
                         settings.root_ca_file)
        if cert is None or key is None or ca is None:
            created = pki.create_cluster_pki(settings.state_dir / "pki", settings.node_name)
            cert, key, ca = created.serving_cert, created.serving_key, created.ca_cert
            logger.info("Made a CA for node %s's pods in %s", settings.node_name,
                        created.ca_cert.parent)
        upstream = urllib.parse.urlsplit(self.core.api_client.configuration.host)
        if upstream.scheme != "http" or upstream.hostname is None:
            raise ValueError(f"the API relay needs a plain HTTP API server URL, not "
                             f"{self.core.api_client.configuration.host!r}")
        self.relay = ApiRelay(upstream.hostname, upstream.port or 80, cert, key)
        self.relay.start()
        self.service_account = ServiceAccountFiles(ca_cert=ca.read_bytes())

    def stop(self) -> None:
        """Stop every pod's containers, clean the node's state, and mark the node NotReady."""
        self._stopping.set()
        with self._workers_lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.request_stop(self.shutdown_grace_period, deleted=False)
        deadline = time.monotonic() + self.shutdown_grace_period + 30
        for worker in workers:
            if not worker.join(max(deadline - time.monotonic(), 0.1)):
                logger.error("[%s] Pod worker did not stop in time", worker.key)
        for thread in self._threads:
            thread.join(WATCH_TIMEOUT + 10)
        if self.relay is not None:
            self.relay.stop()
            if self.relay.running:
                logger.error("The API relay's thread did not stop")
        leftovers = sweep_node_state(self.settings)
        if leftovers:
            logger.warning("Removed leftovers of node %s: %s", self.settings.node_name,
                           ", ".join(leftovers))
        try:
            self._write_node_status(ready=False)
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            logger.info("Could not mark node %s NotReady: %s", self.settings.node_name, error)
        logger.info("Node %s stopped", self.settings.node_name)
