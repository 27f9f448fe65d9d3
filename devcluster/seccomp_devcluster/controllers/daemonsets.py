"""The DaemonSet controller's decisions: a pod per eligible node, replacements, status.

`plan_daemonset` is pure; `seccomp_devcluster.controllers.manager` carries it out.

A node is eligible when it is Ready, its labels match the template's `nodeSelector`,
and the pod tolerates the node's NoSchedule and NoExecute taints, counting the
tolerations that the DaemonSet controller adds to every daemon pod
(`daemon_tolerations`). Each eligible node gets one pod with `spec.nodeName` set
directly, as the DaemonSet controller did before it left binding to the scheduler.
Pods carry the labels `controller-revision-hash` (the template's hash) and
`pod-template-generation`.

- A pod on a node that no longer exists, or whose labels or taints no longer admit
  it, is deleted and counted in numberMisscheduled until it is gone.
- Pods on a node that is not Ready are kept, but the node is not counted in
  desiredNumberScheduled.
- A template change under RollingUpdate deletes old pods while at most
  `maxUnavailable` eligible nodes lack an available pod. A node gets its new pod
  once the old one is gone. Under OnDelete, old pods stay until deleted by hand.
NOTE: `maxSurge`, node affinity and ControllerRevisions are not modelled.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from seccomp_devcluster.controllers.workloads import (
    is_available,
    is_ready,
    scaled_value,
    template_hash,
)

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"

# Tolerations that the DaemonSet controller adds to every daemon pod (Kubernetes 1.32).
DAEMON_TOLERATIONS: tuple[dict[str, str], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
     "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable",
                           "operator": "Exists", "effect": "NoSchedule"}


@dataclass
class DaemonSetPlan:
    """Next actions of the controller for one DaemonSet, and its new status."""

    template_hash: str
    create_on: list[str] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)


def daemon_tolerations(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the pod's tolerations with the daemon tolerations added where missing."""
    tolerations = [dict(toleration) for toleration in pod_spec.get("tolerations") or []]
    extra = list(DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        extra.append(HOST_NETWORK_TOLERATION)
    for toleration in extra:
        if not any(t.get("key") == toleration["key"] and t.get("effect") == toleration["effect"]
                   for t in tolerations):
            tolerations.append(dict(toleration))
    return tolerations


def tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """Tell whether one toleration matches one taint, by the API's rules."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return (toleration.get("key") == taint.get("key")
            and (toleration.get("value") or "") == (taint.get("value") or ""))


def node_is_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def should_run(pod_spec: dict[str, Any], node: dict[str, Any]) -> bool:
    """Tell whether the daemon pod belongs on the node: labels match and taints tolerated."""
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    tolerations = daemon_tolerations(pod_spec)
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(toleration, taint) for toleration in tolerations):
            return False
    return True


def plan_daemonset(daemonset: dict[str, Any], pods: list[dict[str, Any]],
                   nodes: list[dict[str, Any]], now: datetime.datetime) -> DaemonSetPlan:
    """Decide the nodes that get a pod, the pods to delete, and the status."""
    spec = daemonset["spec"]
    template_spec = (spec.get("template") or {}).get("spec") or {}
    current_hash = template_hash(spec.get("template") or {})
    min_ready = int(spec.get("minReadySeconds") or 0)
    plan = DaemonSetPlan(current_hash)

    by_name = {node["metadata"]["name"]: node for node in nodes}
    eligible = sorted(name for name, node in by_name.items()
                      if node_is_ready(node) and should_run(template_spec, node))
    active: dict[str, list[dict[str, Any]]] = {}
    terminating: set[str] = set()
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        if pod["metadata"].get("deletionTimestamp"):
            terminating.add(node_name)
        elif (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            active.setdefault(node_name, []).append(pod)

    misscheduled = 0
    for node_name, node_pods in active.items():
        node = by_name.get(node_name)
        if node is None or not should_run(template_spec, node):
            misscheduled += len(node_pods)
            plan.delete.extend(node_pods)

    replace = _old_pods_to_replace(daemonset, eligible, active, current_hash, min_ready, now)
    plan.delete.extend(replace)
    for node_name in eligible:
        node_pods = active.get(node_name, [])
        if not node_pods and node_name not in terminating:
            plan.create_on.append(node_name)
        elif len(node_pods) > 1:
            # Keep one pod, preferring an updated one, then the oldest.
            ordered = sorted(node_pods, key=lambda pod: (
                _hash_of(pod) != current_hash, pod["metadata"].get("creationTimestamp", "")))
            plan.delete.extend(pod for pod in ordered[1:] if pod not in replace)

    def first_pod(node_name: str) -> dict[str, Any] | None:
        node_pods = active.get(node_name) or []
        return node_pods[0] if node_pods else None

    scheduled = [first_pod(name) for name in eligible]
    placed = [pod for pod in scheduled if pod is not None]
    available = sum(1 for pod in placed if is_available(pod, min_ready, now))
    plan.status = {
        "observedGeneration": daemonset["metadata"].get("generation", 1),
        "desiredNumberScheduled": len(eligible),
        "currentNumberScheduled": len(placed),
        "numberMisscheduled": misscheduled,
        "numberReady": sum(1 for pod in placed if is_ready(pod)),
        "updatedNumberScheduled": sum(1 for pod in placed if _hash_of(pod) == current_hash),
        "numberAvailable": available,
        "numberUnavailable": len(eligible) - available,
    }
    return plan


def _hash_of(pod: dict[str, Any]) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(HASH_LABEL)


def _old_pods_to_replace(daemonset: dict[str, Any], eligible: list[str],
                         active: dict[str, list[dict[str, Any]]], current_hash: str,
                         min_ready: int, now: datetime.datetime) -> list[dict[str, Any]]:
    """Return the old pods on eligible nodes that RollingUpdate deletes now."""
    strategy = daemonset["spec"].get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return []
    rolling = strategy.get("rollingUpdate") or {}
    budget = scaled_value(rolling.get("maxUnavailable"), len(eligible), round_up=True,
                          default=1)
    unavailable = sum(1 for name in eligible
                      if not any(is_available(pod, min_ready, now)
                                 for pod in active.get(name, [])))
    chosen = []
    for name in eligible:
        for pod in active.get(name, []):
            if _hash_of(pod) == current_hash:
                continue
            if not is_available(pod, min_ready, now):
                chosen.append(pod)  # Deleting an unavailable pod costs no availability.
            elif unavailable < budget:
                chosen.append(pod)
                unavailable += 1
    return chosen
