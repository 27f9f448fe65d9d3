"""What the real API server does for particular built-in kinds on create and update.

Only the defaults and server-set fields that the project's clients read are filled in:
pod phase and a few spec defaults, namespace phase, service cluster IPs, Secret
`stringData`, Deployment and DaemonSet defaults. Events of the two Event APIs are
converted to one stored form (core v1), as the real server stores them.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

PODS = ("", "pods")
NODES = ("", "nodes")
NAMESPACES = ("", "namespaces")
EVENTS = ("", "events")
SECRETS = ("", "secrets")
SERVICES = ("", "services")

_cluster_ips = itertools.count(1)

# Fields of events.k8s.io/v1 Event and the core v1 Event fields they are stored as.
_EVENT_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_SHARED_EVENT_FIELDS = (
    "metadata", "reason", "type", "action", "eventTime", "series", "related",
    "reportingInstance",
)


def event_to_core(event: dict[str, Any]) -> dict[str, Any]:
    """Convert an events.k8s.io/v1 Event to the stored core v1 form."""
    result: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for field in _SHARED_EVENT_FIELDS:
        if field in event:
            result[field] = event[field]
    for new_name, core_name in _EVENT_FIELDS.items():
        if new_name in event:
            result[core_name] = event[new_name]
    return result


def event_from_core(event: dict[str, Any]) -> dict[str, Any]:
    """Convert a stored core v1 Event to the events.k8s.io/v1 form."""
    result: dict[str, Any] = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for field in _SHARED_EVENT_FIELDS:
        if field in event:
            result[field] = event[field]
    for new_name, core_name in _EVENT_FIELDS.items():
        if core_name in event:
            result[new_name] = event[core_name]
    return result


def prepare_create(storage_key: tuple[str, str], obj: dict[str, Any]) -> None:
    """Fill in the defaults and server-set fields of a new built-in object, in place."""
    if storage_key == PODS:
        _default_pod(obj)
    elif storage_key == NAMESPACES:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    elif storage_key == SERVICES:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec.get("clusterIP") != "None" and not spec.get("clusterIP"):
            number = next(_cluster_ips)
            spec["clusterIP"] = f"10.96.{number // 250}.{number % 250 + 1}"
            spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("sessionAffinity", "None")
        obj.setdefault("status", {"loadBalancer": {}})
    elif storage_key == ("apps", "deployments"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        })
    elif storage_key == ("apps", "daemonsets"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("updateStrategy", {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
        })
        obj["status"] = {
            "currentNumberScheduled": 0, "desiredNumberScheduled": 0,
            "numberMisscheduled": 0, "numberReady": 0,
        }
    prepare_write(storage_key, obj)


def prepare_write(storage_key: tuple[str, str], obj: dict[str, Any]) -> None:
    """Normalize fields on every create and update, in place."""
    if storage_key == SECRETS and obj.get("stringData"):
        data = obj.setdefault("data", {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    elif storage_key == SECRETS:
        obj.pop("stringData", None)
    if storage_key == SECRETS:
        obj.setdefault("type", "Opaque")


def _default_pod(pod: dict[str, Any]) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    for container in itertools.chain(spec.get("initContainers") or [], spec.get("containers") or []):
        image = str(container.get("image", ""))
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: dict[str, Any]) -> str:
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    resources = [container.get("resources") or {} for container in containers]
    if not any(resource.get("requests") or resource.get("limits") for resource in resources):
        return "BestEffort"
    guaranteed = all(
        (resource.get("limits") or {}).get("cpu") and (resource.get("limits") or {}).get("memory")
        and all(
            (resource.get("requests") or {}).get(name, resource["limits"][name]) == resource["limits"][name]
            for name in ("cpu", "memory")
        )
        for resource in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"


def keeps_status_on_create(storage_key: tuple[str, str]) -> bool:
    """Nodes may be created with a status (the kubelet does so); other kinds may not."""
    return storage_key == NODES


def tracks_generation(storage_key: tuple[str, str], custom: bool, has_status: bool) -> bool:
    """Return whether the kind has metadata.generation, bumped on spec changes."""
    return custom or (has_status and storage_key not in (NAMESPACES, NODES, SERVICES))
