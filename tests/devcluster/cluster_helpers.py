"""Helpers for tests that run pods on the dev cluster through the kubernetes client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import kubernetes
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from seccomp_devcluster.cluster import DevCluster

# Seconds a test waits for a pod to reach a state; generous, never asserted on.
PATIENCE = 60.0


def core_api(cluster: DevCluster) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(cluster.api_client())


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def create_pod(cluster: DevCluster, name: str, containers: list[dict[str, Any]],
               **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": spec.pop("annotations", {})},
            "spec": {"containers": containers, **spec}}
    # The body stays JSON, so the client's models cannot drop fields from it.
    response: Any = core_api(cluster).create_namespaced_pod(
        "default", cast(Any, body), _preload_content=False)
    created: dict[str, Any] = json.loads(response.data)
    return created


def read_pod(cluster: DevCluster, name: str) -> dict[str, Any] | None:
    try:
        response: Any = core_api(cluster).read_namespaced_pod(name, "default",
                                                              _preload_content=False)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    pod: dict[str, Any] = json.loads(response.data)
    return pod


def wait_for_pod(cluster: DevCluster, name: str,
                 predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll the pod until `predicate` holds for it; fail with its last state otherwise."""
    deadline = time.monotonic() + PATIENCE
    pod = read_pod(cluster, name)
    while pod is None or not predicate(pod):
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name} never reached the expected state; last seen: "
                                 f"{json.dumps(pod and pod.get('status'), indent=1)}")
        time.sleep(0.1)
        pod = read_pod(cluster, name)
    return pod


def phase_is(*phases: str) -> Callable[[dict[str, Any]], bool]:
    return lambda pod: (pod.get("status") or {}).get("phase") in phases


def container_status(pod: dict[str, Any], name: str, *, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    entry: dict[str, Any] = next(s for s in pod["status"].get(key, []) if s["name"] == name)
    return entry


def waiting_reason(pod: dict[str, Any], name: str) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status["name"] == name and "waiting" in status["state"]:
            reason: str = status["state"]["waiting"].get("reason", "")
            return reason
    return None


def pod_log(cluster: DevCluster, name: str, container: str) -> str:
    log: str = core_api(cluster).read_namespaced_pod_log(name, "default", container=container)
    return log


def delete_and_watch(cluster: DevCluster, name: str,
                     grace_period: int | None = None) -> dict[str, Any]:
    """Delete the pod and return its last version, seen in the DELETED watch event."""
    core = core_api(cluster)
    first: Any = core.list_namespaced_pod(
        "default", field_selector=f"metadata.name={name}", _preload_content=False)
    listing = json.loads(first.data)
    version = listing["metadata"]["resourceVersion"]
    core.delete_namespaced_pod(name, "default", grace_period_seconds=grace_period,
                               _preload_content=False)
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        response: Any = core.list_namespaced_pod(
            "default", field_selector=f"metadata.name={name}", watch=True,
            resource_version=version, timeout_seconds=5, _preload_content=False)
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                event = json.loads(line)
                version = event["object"]["metadata"].get("resourceVersion", version)
                if event["type"] == "DELETED":
                    final: dict[str, Any] = event["object"]
                    return final
        finally:
            response.release_conn()
    raise AssertionError(f"pod {name} was not removed within {PATIENCE} s of its deletion")
