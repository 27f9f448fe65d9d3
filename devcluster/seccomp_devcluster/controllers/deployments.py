"""The Deployment controller's decisions: which pods to create or delete, and the status.

`plan_deployment` is pure; `seccomp_devcluster.controllers.manager` carries it out.
The dev cluster differs from kube-controller-manager in two ways, both visible to
users:

- No ReplicaSets. A Deployment owns its pods directly (ownerReferences name the
  Deployment), and each pod carries the `pod-template-hash` label of its template.
  Pod names keep the real form `<deployment>-<hash>-<random>`.
- Every template change is rolled out as the Recreate strategy does it, whatever
  the `strategy.type`. All old pods are deleted, and the new ones are created once
  the old ones are gone. Scaling up and down keeps the current pods.

The status has the fields and conditions that `kubectl rollout status` and
`kubectl wait --for=condition=Available` read: observedGeneration, replicas,
updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas, and the
Available and Progressing conditions with the real reasons. Progressing turns False
with ProgressDeadlineExceeded when no progress was made for
`progressDeadlineSeconds`.
NOTE: there is no `deployment.kubernetes.io/revision` annotation and no rollout
history, so `kubectl rollout undo` and `rollout status --revision` do not work.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from seccomp_devcluster.controllers.workloads import (
    deletion_rank,
    format_time,
    is_available,
    is_ready,
    parse_time,
    scaled_value,
    template_hash,
)

HASH_LABEL = "pod-template-hash"


@dataclass
class DeploymentPlan:
    """Next actions of the controller for one Deployment, and its new status."""

    template_hash: str
    create: int = 0
    delete: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)


def max_unavailable(deployment: dict[str, Any], replicas: int) -> int:
    """Return how many pods may be unavailable while the Deployment is still Available.

    As kube-controller-manager resolves it: 0 for Recreate, else maxUnavailable
    rounded down (maxSurge rounded up), at least 1 when both are 0, at most replicas.
    """
    strategy = deployment["spec"].get("strategy") or {}
    if strategy.get("type") == "Recreate" or replicas == 0:
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge"), replicas, round_up=True, default=0)
    unavailable = scaled_value(rolling.get("maxUnavailable"), replicas, round_up=False,
                               default=0)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return min(unavailable, replicas)


def _condition(previous: list[dict[str, Any]], kind: str, status: str, reason: str,
               message: str, now: str, progressed: bool) -> dict[str, Any]:
    """Return a condition, keeping its times while nothing about it changed."""
    old = next((c for c in previous if c.get("type") == kind), None)
    transition = now
    update = now
    if old is not None and old.get("status") == status:
        transition = old.get("lastTransitionTime") or now
        unchanged = old.get("reason") == reason and old.get("message") == message
        if unchanged and not progressed:
            update = old.get("lastUpdateTime") or now
    return {"type": kind, "status": status, "lastUpdateTime": update,
            "lastTransitionTime": transition, "reason": reason, "message": message}


def plan_deployment(deployment: dict[str, Any], pods: list[dict[str, Any]],
                    now: datetime.datetime) -> DeploymentPlan:
    """Decide the pods to create and delete, and the status; `pods` are the owned ones."""
    spec = deployment["spec"]
    metadata = deployment["metadata"]
    current_hash = template_hash(spec.get("template") or {})
    replicas = int(spec.get("replicas", 1))
    min_ready = int(spec.get("minReadySeconds") or 0)
    plan = DeploymentPlan(current_hash)

    active = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")
              and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    new = [pod for pod in active if _hash_of(pod) == current_hash]
    old = [pod for pod in active if _hash_of(pod) != current_hash]
    old_terminating = [pod for pod in pods if pod["metadata"].get("deletionTimestamp")
                       and _hash_of(pod) != current_hash]

    if not spec.get("paused"):
        if old:
            plan.delete = old
        elif not old_terminating and len(new) < replicas:
            plan.create = replicas - len(new)
        elif len(new) > replicas:
            plan.delete = sorted(new, key=deletion_rank)[:len(new) - replicas]

    available = sum(1 for pod in active if is_available(pod, min_ready, now))
    status = {
        "observedGeneration": metadata.get("generation", 1),
        "replicas": len(active),
        "updatedReplicas": len(new),
        "readyReplicas": sum(1 for pod in active if is_ready(pod)),
        "availableReplicas": available,
        "unavailableReplicas": max(replicas - available, 0),
    }
    status["conditions"] = _conditions(deployment, status, replicas, current_hash, now)
    plan.status = status
    return plan


def _hash_of(pod: dict[str, Any]) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(HASH_LABEL)


def _conditions(deployment: dict[str, Any], status: dict[str, Any], replicas: int,
                current_hash: str, now: datetime.datetime) -> list[dict[str, Any]]:
    previous_status = deployment.get("status") or {}
    previous = previous_status.get("conditions") or []
    stamp = format_time(now)
    name = f"{deployment['metadata']['name']}-{current_hash}"
    counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    progressed = any(previous_status.get(key) != status[key] for key in counts)

    if status["availableReplicas"] >= replicas - max_unavailable(deployment, replicas):
        available = _condition(previous, "Available", "True", "MinimumReplicasAvailable",
                               "Deployment has minimum availability.", stamp, False)
    else:
        available = _condition(previous, "Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability.", stamp, False)

    complete = (status["updatedReplicas"] == replicas and status["replicas"] == replicas
                and status["availableReplicas"] == replicas)
    if complete:
        progressing = _condition(previous, "Progressing", "True", "NewReplicaSetAvailable",
                                 f'ReplicaSet "{name}" has successfully progressed.', stamp,
                                 progressed)
    else:
        timed_out = next((c for c in previous if c.get("type") == "Progressing"
                          and c.get("reason") == "ProgressDeadlineExceeded"), None)
        if timed_out is not None and not progressed:
            return [available, timed_out]
        progressing = _condition(previous, "Progressing", "True", "ReplicaSetUpdated",
                                 f'ReplicaSet "{name}" is progressing.', stamp, progressed)
        deadline = int(deployment["spec"].get("progressDeadlineSeconds") or 600)
        last_progress = parse_time(progressing["lastUpdateTime"])
        if last_progress is not None and (
                last_progress + datetime.timedelta(seconds=deadline) <= now):
            progressing = _condition(previous, "Progressing", "False",
                                     "ProgressDeadlineExceeded",
                                     f'ReplicaSet "{name}" has timed out progressing.',
                                     stamp, False)
    return [available, progressing]
