"""The dev cluster's scheduler: binds pods that have no node, round-robin over Ready nodes.

The API server runs no scheduler, so the cluster launcher runs this one in a thread.
It watches pods without `spec.nodeName` and binds each with the `pods/binding`
subresource, as kube-scheduler does, to the next Ready node whose labels match the
pod's `nodeSelector`. Nothing else of kube-scheduler is modelled: no resources,
affinity, taints or topology spread. A pod that no node fits waits, and is tried
again whenever a node or the pod changes.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from seccomp_devcluster.kube import list_and_watch

logger = logging.getLogger(__name__)


def node_is_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_matches(node: dict[str, Any], pod: dict[str, Any]) -> bool:
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


class RoundRobinScheduler:
    """Binds unscheduled pods to Ready nodes in turn; see the module docstring."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.core = kubernetes.client.CoreV1Api(api_client)
        self._nodes: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._watch_nodes, "scheduler-nodes"),
                             (self._watch_pods, "scheduler-pods")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def threads(self) -> list[threading.Thread]:
        """The scheduler's threads, for clean-up checks after `stop`."""
        return list(self._threads)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join()

    def _watch_nodes(self) -> None:
        def handle(event: str, node: dict[str, Any]) -> None:
            with self._lock:
                if event == "DELETED":
                    self._nodes.pop(node["metadata"]["name"], None)
                else:
                    self._nodes[node["metadata"]["name"]] = node
            self._schedule_pending()

        list_and_watch(self.core.list_node, handle, self._stopping)

    def _watch_pods(self) -> None:
        def handle(event: str, pod: dict[str, Any]) -> None:
            uid = pod["metadata"]["uid"]
            with self._lock:
                unscheduled = (event != "DELETED" and not pod["spec"].get("nodeName")
                               and not pod["metadata"].get("deletionTimestamp"))
                if unscheduled:
                    self._pending[uid] = pod
                else:
                    self._pending.pop(uid, None)
            if unscheduled:
                self._schedule_pending()

        list_and_watch(self.core.list_pod_for_all_namespaces, handle, self._stopping,
                       field_selector="spec.nodeName=")

    def _pick_node(self, pod: dict[str, Any]) -> str | None:
        names = sorted(name for name, node in self._nodes.items()
                       if node_is_ready(node) and node_matches(node, pod))
        if not names:
            return None
        return names[next(self._counter) % len(names)]

    def _schedule_pending(self) -> None:
        with self._lock:
            choices = [(pod, self._pick_node(pod)) for pod in self._pending.values()]
        for pod, node in choices:
            if node is not None:
                self._bind(pod, node)

    def _bind(self, pod: dict[str, Any], node: str) -> None:
        metadata = pod["metadata"]
        binding = kubernetes.client.V1Binding(
            metadata=kubernetes.client.V1ObjectMeta(name=metadata["name"], uid=metadata["uid"]),
            target=kubernetes.client.V1ObjectReference(api_version="v1", kind="Node", name=node))
        try:
            self.core.create_namespaced_pod_binding(metadata["name"], metadata["namespace"],
                                                    binding, _preload_content=False)
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            # 409: bound meanwhile (by its creator or an earlier event); 404: deleted.
            if isinstance(error, ApiException) and error.status in (404, 409):
                logger.debug("[%s/%s] Not bound: %s", metadata["namespace"], metadata["name"],
                             error.reason)
            else:
                logger.error("[%s/%s] Binding to node %s failed: %s", metadata["namespace"],
                             metadata["name"], node, error)
            return
        with self._lock:
            self._pending.pop(metadata["uid"], None)
        logger.info("[%s/%s] Bound to node %s", metadata["namespace"], metadata["name"], node)
