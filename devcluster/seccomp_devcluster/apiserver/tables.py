"""Server-side Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`).

`kubectl get` prints what the server puts in the Table: for custom resources the CRD's
`additionalPrinterColumns` (JSONPath evaluated with jsonpath-ng; columns with a
priority above 0 are shown by `-o wide` only), for built-in kinds the columns the real
server prints for the kinds this project uses, and NAME and AGE for the rest.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from typing import Any

from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.parser import parse as parse_jsonpath

from seccomp_devcluster.apiserver import registry

Row = list[Any]
Column = dict[str, Any]


def column(name: str, description: str, type_: str = "string", priority: int = 0,
           format_: str = "") -> Column:
    return {"name": name, "type": type_, "format": format_, "description": description,
            "priority": priority}


NAME_COLUMN = column("Name", "Name must be unique within a namespace.", format_="name")
AGE_COLUMN = column("Age", "CreationTimestamp is a timestamp representing the server time "
                    "when this object was created.", type_="date")


def human_duration(seconds: float) -> str:
    """Format an age as kubectl does (`5s`, `3m20s`, `2d4h`...)."""
    if seconds < -1:
        return "<invalid>"
    seconds = max(int(seconds), 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def age(timestamp: Any) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        moment = datetime.datetime.fromisoformat(timestamp)
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.datetime.now(datetime.UTC) - moment).total_seconds())


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _created(obj: dict[str, Any]) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"))


def _pod_row(pod: dict[str, Any]) -> Row:
    statuses = _get(pod, "status", "containerStatuses") or []
    containers = _get(pod, "spec", "containers") or []
    ready = sum(1 for status in statuses if status.get("ready"))
    restarts = sum(int(status.get("restartCount") or 0) for status in statuses)
    reason = _get(pod, "status", "reason") or _get(pod, "status", "phase") or "Unknown"
    for status in reversed(statuses):
        state = status.get("state") or {}
        if _get(state, "waiting", "reason"):
            reason = state["waiting"]["reason"]
        elif _get(state, "terminated", "reason"):
            reason = state["terminated"]["reason"]
        elif "terminated" in state:
            terminated = state["terminated"]
            signal = terminated.get("signal")
            reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
    if _get(pod, "metadata", "deletionTimestamp"):
        reason = "Unknown" if _get(pod, "status", "reason") == "NodeLost" else "Terminating"
    return [
        f"{ready}/{len(containers)}", reason, restarts, _created(pod),
        _get(pod, "status", "podIP") or "<none>", _get(pod, "spec", "nodeName") or "<none>",
        _get(pod, "status", "nominatedNodeName") or "<none>", "<none>",
    ]


def _node_row(node: dict[str, Any]) -> Row:
    conditions = _get(node, "status", "conditions") or []
    ready = next((item for item in conditions if item.get("type") == "Ready"), None)
    if ready is None:
        status = "Unknown"
    elif ready.get("status") == "True":
        status = "Ready"
    else:
        status = "NotReady"
    if _get(node, "spec", "unschedulable"):
        status += ",SchedulingDisabled"
    labels = _get(node, "metadata", "labels") or {}
    roles = sorted(key.split("/", 1)[1] for key in labels
                   if key.startswith("node-role.kubernetes.io/"))
    return [status, ",".join(roles) or "<none>", _created(node),
            _get(node, "status", "nodeInfo", "kubeletVersion") or ""]


def _event_row(event: dict[str, Any]) -> Row:
    last = event.get("lastTimestamp") or event.get("eventTime") or _get(event, "metadata", "creationTimestamp")
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    return [age(last), event.get("type", ""), event.get("reason", ""),
            f"{kind}/{involved.get('name', '')}", event.get("message", "")]


def _deployment_row(deployment: dict[str, Any]) -> Row:
    status = deployment.get("status") or {}
    desired = _get(deployment, "spec", "replicas") or 0
    return [f"{status.get('readyReplicas', 0)}/{desired}", status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0), _created(deployment)]


def _daemonset_row(daemonset: dict[str, Any]) -> Row:
    status = daemonset.get("status") or {}
    selector = _get(daemonset, "spec", "template", "spec", "nodeSelector") or {}
    return [status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0),
            status.get("numberAvailable", 0),
            ",".join(f"{key}={value}" for key, value in selector.items()) or "<none>",
            _created(daemonset)]


def _service_row(service: dict[str, Any]) -> Row:
    ports = _get(service, "spec", "ports") or []
    shown = ",".join(f"{port.get('port')}/{port.get('protocol', 'TCP')}" for port in ports)
    return [_get(service, "spec", "type") or "ClusterIP", _get(service, "spec", "clusterIP") or "<none>",
            "<none>", shown or "<none>", _created(service)]


BuiltInTable = tuple[list[Column], Callable[[dict[str, Any]], Row]]

BUILT_IN_TABLES: dict[tuple[str, str], BuiltInTable] = {
    ("", "pods"): ([
        column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        column("Status", "The aggregate status of the containers in this pod."),
        column("Restarts", "The number of times the containers in this pod have been restarted.",
               type_="string"),
        AGE_COLUMN,
        column("IP", "IP address allocated to the pod.", priority=1),
        column("Node", "Name of the node where the pod is running.", priority=1),
        column("Nominated Node", "Name of the node nominated for the pod.", priority=1),
        column("Readiness Gates", "Pod readiness gates.", priority=1),
    ], _pod_row),
    ("", "namespaces"): ([column("Status", "The status of the namespace"), AGE_COLUMN],
                         lambda ns: [_get(ns, "status", "phase") or "", _created(ns)]),
    ("", "nodes"): ([
        column("Status", "The status of the node"), column("Roles", "The roles of the node"),
        AGE_COLUMN, column("Version", "Kubelet Version reported by the node."),
    ], _node_row),
    ("", "configmaps"): ([column("Data", "Number of entries in the ConfigMap.", type_="integer"),
                          AGE_COLUMN],
                         lambda cm: [len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
                                     _created(cm)]),
    ("", "secrets"): ([column("Type", "The type of the secret"),
                       column("Data", "The number of entries in the secret.", type_="integer"),
                       AGE_COLUMN],
                      lambda secret: [secret.get("type", "Opaque"), len(secret.get("data") or {}),
                                      _created(secret)]),
    ("", "events"): ([
        column("Last Seen", "Time when the most recent occurrence of this event was recorded."),
        column("Type", "Type of this event (Normal, Warning), new types could be added in the future."),
        column("Reason", "This should be a short, machine understandable string."),
        column("Object", "The object this Event is about."),
        column("Message", "A human-readable description of the status of this operation."),
    ], _event_row),
    ("", "serviceaccounts"): ([column("Secrets", "Number of secrets.", type_="integer"), AGE_COLUMN],
                              lambda sa: [len(sa.get("secrets") or []), _created(sa)]),
    ("", "services"): ([
        column("Type", "The type of the service."), column("Cluster-IP", "The cluster IP."),
        column("External-IP", "The external IP."), column("Port(s)", "The service ports."),
        AGE_COLUMN,
    ], _service_row),
    ("apps", "deployments"): ([
        column("Ready", "Number of the pod with ready state."),
        column("Up-to-date", "Total number of non-terminated pods with the desired template.",
               type_="integer"),
        column("Available", "Total number of available pods.", type_="integer"), AGE_COLUMN,
    ], _deployment_row),
    ("apps", "daemonsets"): ([
        column("Desired", "The number of nodes that should be running the daemon pod.", type_="integer"),
        column("Current", "The number of nodes running at least one daemon pod.", type_="integer"),
        column("Ready", "The number of nodes with a ready daemon pod.", type_="integer"),
        column("Up-to-date", "The number of nodes running the updated daemon pod.", type_="integer"),
        column("Available", "The number of nodes with an available daemon pod.", type_="integer"),
        column("Node Selector", "The node selector of the daemon pods."), AGE_COLUMN,
    ], _daemonset_row),
    ("coordination.k8s.io", "leases"): ([column("Holder", "The holder of the lease."), AGE_COLUMN],
                                        lambda lease: [_get(lease, "spec", "holderIdentity") or "",
                                                       _created(lease)]),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        [column("Created At", "The creation time of the definition.", type_="date")],
        lambda crd: [_get(crd, "metadata", "creationTimestamp") or ""]),
}


# Kinds whose tables put the name last, shown by `-o wide` only (as events do).
_NAME_LAST = frozenset({("", "events")})


def _custom_columns(rtype: registry.ResourceType) -> list[Column]:
    if not rtype.printer_columns:
        return [AGE_COLUMN]
    return [
        column(spec["name"], spec.get("description", ""), type_=spec.get("type", "string"),
               priority=int(spec.get("priority", 0)), format_=spec.get("format", ""))
        for spec in rtype.printer_columns
    ]


@functools.lru_cache(maxsize=256)
def _compiled(path: str) -> Any:
    return parse_jsonpath("$" + path)


def _cell(obj: dict[str, Any], spec: dict[str, Any]) -> Any:
    try:
        matches = [match.value for match in _compiled(spec.get("jsonPath", "")).find(obj)]
    except JSONPathError:
        return None
    if not matches:
        return None
    value = matches[0]
    if spec.get("type") == "date":
        return age(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if spec.get("type") == "string" and not isinstance(value, str):
        return json.dumps(value)
    return value


def _row_cells(rtype: registry.ResourceType, obj: dict[str, Any]) -> Row:
    name = _get(obj, "metadata", "name")
    if rtype.is_custom:
        if not rtype.printer_columns:
            return [name, _created(obj)]
        return [name] + [_cell(obj, spec) for spec in rtype.printer_columns]
    built_in = BUILT_IN_TABLES.get(rtype.storage_key)
    if built_in is None:
        return [name, _created(obj)]
    if rtype.storage_key in _NAME_LAST:
        return built_in[1](obj) + [name]
    return [name] + built_in[1](obj)


def columns(rtype: registry.ResourceType) -> list[Column]:
    if rtype.is_custom:
        return [NAME_COLUMN] + _custom_columns(rtype)
    built_in = BUILT_IN_TABLES.get(rtype.storage_key)
    if built_in is None:
        return [NAME_COLUMN, AGE_COLUMN]
    if rtype.storage_key in _NAME_LAST:
        return built_in[0] + [dict(NAME_COLUMN, priority=1)]
    return [NAME_COLUMN] + built_in[0]


def _row_object(obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def table(rtype: registry.ResourceType, items: list[dict[str, Any]], resource_version: str,
          include_object: str = "Metadata", list_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a meta.k8s.io/v1 Table of objects already rendered in the request's version."""
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": _row_cells(rtype, obj)}
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    metadata = dict(list_metadata or {})
    metadata["resourceVersion"] = resource_version
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": columns(rtype), "rows": rows}
