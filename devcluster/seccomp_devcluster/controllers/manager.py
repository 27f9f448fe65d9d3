"""The controller-manager stand-in: the Deployment and DaemonSet controllers in threads.

The cluster launcher starts one `ControllerManager` beside the scheduler. It keeps
caches of Deployments, DaemonSets, pods and nodes with list-and-watch
(`seccomp_devcluster.kube`), and one worker thread reconciles each workload whose
objects changed. It calls `plan_deployment` or `plan_daemonset` for the actions,
creates and deletes pods through the API, and writes the status through the status
subresource when it changed. Every workload is also reconciled every
`resync_interval` seconds, so availability after `minReadySeconds` and the
progress deadline are noticed without an event.

Like kube-controller-manager, a workload that just created or deleted pods is not
acted on again until the watch has shown those changes ("expectations"), so a
stale cache never creates a second pod for the same place. An expectation that
is not met within EXPECTATION_TIMEOUT seconds is dropped.

Deleting a workload needs no controller: the API server's garbage collector
deletes the pods whose ownerReferences name it.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from seccomp_devcluster.controllers import daemonsets, deployments
from seccomp_devcluster.controllers.workloads import controller_uid, pod_from_template
from seccomp_devcluster.kube import list_and_watch

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
# Seconds after which a pod creation or deletion that the watch never showed is forgotten.
EXPECTATION_TIMEOUT = 30.0
# Seconds the informers get to list everything once before the workers start anyway.
SYNC_TIMEOUT = 30.0

WorkloadKey = tuple[str, str]  # ("deployments" or "daemonsets", uid)


class ControllerManager:
    """Runs the Deployment and DaemonSet controllers; see the module docstring."""

    def __init__(self, api_client: kubernetes.client.ApiClient, *,
                 resync_interval: float = 1.0) -> None:
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.resync_interval = resync_interval
        self._lock = threading.Lock()
        self._workloads: dict[WorkloadKey, dict[str, Any]] = {}
        self._pods: dict[str, dict[str, Any]] = {}
        self._nodes: dict[str, dict[str, Any]] = {}
        # Per workload: pod names expected to appear and pod uids expected to go, with
        # the time each expectation was made.
        self._expected: dict[WorkloadKey, dict[str, float]] = {}
        self._queue: list[WorkloadKey] = []
        self._queued = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._synced = [threading.Event() for _ in range(4)]
        self._threads: list[threading.Thread] = []

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        informers: list[tuple[Callable[..., Any], Callable[[str, dict[str, Any]], None], str]] = [
            (self.apps.list_deployment_for_all_namespaces,
             self._workload_handler("deployments"), "deployments"),
            (self.apps.list_daemon_set_for_all_namespaces,
             self._workload_handler("daemonsets"), "daemonsets"),
            (self.core.list_pod_for_all_namespaces, self._handle_pod, "pods"),
            (self.core.list_node, self._handle_node, "nodes"),
        ]
        for (list_function, handle, name), synced in zip(informers, self._synced, strict=True):
            thread = threading.Thread(
                target=list_and_watch, args=(list_function, handle, self._stopping),
                kwargs={"synced": synced}, name=f"controllers-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for target, name in ((self._work, "controllers-worker"),
                             (self._resync, "controllers-resync")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._queued:
            self._queued.notify_all()
        for thread in self._threads:
            thread.join()

    @property
    def threads(self) -> list[threading.Thread]:
        """The manager's threads, for clean-up checks after `stop`."""
        return list(self._threads)

    # -- caches and queue ----------------------------------------------------------------

    def _enqueue(self, key: WorkloadKey) -> None:
        with self._queued:
            if key not in self._queue:
                self._queue.append(key)
                self._queued.notify()

    def _workload_handler(self, kind: str) -> Callable[[str, dict[str, Any]], None]:
        def handle(event: str, workload: dict[str, Any]) -> None:
            key = (kind, workload["metadata"]["uid"])
            with self._lock:
                if event == "DELETED":
                    self._workloads.pop(key, None)
                    self._expected.pop(key, None)
                    return
                self._workloads[key] = workload
            self._enqueue(key)

        return handle

    def _handle_pod(self, event: str, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        owner = controller_uid(pod)
        with self._lock:
            if event == "DELETED":
                self._pods.pop(metadata["uid"], None)
            else:
                self._pods[metadata["uid"]] = pod
            keys = [key for key in self._workloads if key[1] == owner]
            for key in keys:
                expected = self._expected.get(key, {})
                expected.pop(f"create/{metadata['name']}", None)
                if event == "DELETED" or metadata.get("deletionTimestamp"):
                    expected.pop(f"delete/{metadata['uid']}", None)
        for key in keys:
            self._enqueue(key)

    def _handle_node(self, event: str, node: dict[str, Any]) -> None:
        with self._lock:
            if event == "DELETED":
                self._nodes.pop(node["metadata"]["name"], None)
            else:
                self._nodes[node["metadata"]["name"]] = node
            keys = [key for key in self._workloads if key[0] == "daemonsets"]
        for key in keys:
            self._enqueue(key)

    def _resync(self) -> None:
        while not self._stopping.wait(self.resync_interval):
            with self._lock:
                keys = list(self._workloads)
            for key in keys:
                self._enqueue(key)

    # -- reconciling -----------------------------------------------------------------

    def _work(self) -> None:
        deadline = time.monotonic() + SYNC_TIMEOUT
        for synced in self._synced:
            while not synced.wait(0.1):
                if self._stopping.is_set():
                    return
                if time.monotonic() > deadline:
                    logger.warning("Informers did not sync within %s s; reconciling anyway",
                                   SYNC_TIMEOUT)
                    break
        while True:
            with self._queued:
                while not self._queue and not self._stopping.is_set():
                    self._queued.wait()
                if self._stopping.is_set():
                    return
                key = self._queue.pop(0)
            try:
                self._reconcile(key)
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
                logger.warning("Reconciling %s %s failed: %s; retrying at the next resync",
                               key[0], key[1], error)
            except Exception:
                logger.exception("Reconciling %s %s failed", key[0], key[1])

    def _reconcile(self, key: WorkloadKey) -> None:
        now = datetime.datetime.now(datetime.UTC)
        with self._lock:
            workload = self._workloads.get(key)
            if workload is None:
                return
            pods = [pod for pod in self._pods.values() if controller_uid(pod) == key[1]]
            nodes = list(self._nodes.values())
            expected = self._expected.setdefault(key, {})
            for name, since in list(expected.items()):
                if time.monotonic() - since > EXPECTATION_TIMEOUT:
                    logger.warning("[%s] The watch never showed %s; going on without it",
                                   _name(workload), name)
                    del expected[name]
            waiting = bool(expected)
        if workload["metadata"].get("deletionTimestamp"):
            return
        if key[0] == "deployments":
            plan = deployments.plan_deployment(workload, pods, now)
            creates = [self._deployment_pod(workload, plan.template_hash)
                       for _ in range(plan.create)]
            deletes, status = plan.delete, plan.status
        else:
            ds_plan = daemonsets.plan_daemonset(workload, pods, nodes, now)
            creates = [self._daemon_pod(workload, ds_plan.template_hash, node)
                       for node in ds_plan.create_on]
            deletes, status = ds_plan.delete, ds_plan.status
        if not waiting:
            self._apply(key, workload, creates, deletes)
        self._write_status(key[0], workload, status)

    def _deployment_pod(self, deployment: dict[str, Any], template_hash: str) -> dict[str, Any]:
        name = deployment["metadata"]["name"]
        return pod_from_template(deployment, f"{name}-{template_hash}-",
                                 {deployments.HASH_LABEL: template_hash})

    def _daemon_pod(self, daemonset: dict[str, Any], template_hash: str,
                    node: str) -> dict[str, Any]:
        generation = str(daemonset["metadata"].get("generation", 1))
        pod = pod_from_template(daemonset, f"{daemonset['metadata']['name']}-",
                                {daemonsets.HASH_LABEL: template_hash,
                                 daemonsets.GENERATION_LABEL: generation})
        pod["spec"]["nodeName"] = node
        pod["spec"]["tolerations"] = daemonsets.daemon_tolerations(pod["spec"])
        return pod

    def _apply(self, key: WorkloadKey, workload: dict[str, Any],
               creates: list[dict[str, Any]], deletes: list[dict[str, Any]]) -> None:
        namespace = workload["metadata"]["namespace"]
        for pod in creates:
            response: Any = self.core.create_namespaced_pod(namespace, cast(Any, pod),
                                                            _preload_content=False)
            created = json.loads(response.data)
            with self._lock:
                self._expected.setdefault(key, {})[
                    f"create/{created['metadata']['name']}"] = time.monotonic()
            logger.info("[%s] Created pod %s%s", _name(workload), created["metadata"]["name"],
                        f" on node {pod['spec']['nodeName']}" if pod["spec"].get("nodeName")
                        else "")
        for pod in deletes:
            metadata = pod["metadata"]
            with self._lock:
                self._expected.setdefault(key, {})[f"delete/{metadata['uid']}"] = (
                    time.monotonic())
            body = kubernetes.client.V1DeleteOptions(
                preconditions=kubernetes.client.V1Preconditions(uid=metadata["uid"]))
            try:
                self.core.delete_namespaced_pod(metadata["name"], namespace, body=body,
                                                _preload_content=False)
            except ApiException as error:
                if error.status not in (404, 409):
                    raise
                # Gone already, or replaced by a pod of the same name.
                with self._lock:
                    self._expected.get(key, {}).pop(f"delete/{metadata['uid']}", None)
                continue
            logger.info("[%s] Deleted pod %s", _name(workload), metadata["name"])

    def _write_status(self, kind: str, workload: dict[str, Any], status: dict[str, Any]) -> None:
        current = workload.get("status") or {}
        if all(current.get(field) == value for field, value in status.items()):
            return
        metadata = workload["metadata"]
        patch = getattr(self.apps, "patch_namespaced_deployment_status" if kind == "deployments"
                        else "patch_namespaced_daemon_set_status")
        try:
            patch(metadata["name"], metadata["namespace"], {"status": status},
                  _content_type=MERGE_PATCH, _preload_content=False)
        except ApiException as error:
            if error.status != 404:
                raise


def _name(workload: dict[str, Any]) -> str:
    metadata = workload["metadata"]
    return f"{metadata.get('namespace')}/{metadata.get('name')}"
