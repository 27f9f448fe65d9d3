"""Deployment and DaemonSet controller decisions, without a server."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from seccomp_devcluster.controllers.daemonsets import (
    HASH_LABEL as DAEMON_HASH,
)
from seccomp_devcluster.controllers.daemonsets import (
    daemon_tolerations,
    plan_daemonset,
    should_run,
)
from seccomp_devcluster.controllers.deployments import (
    HASH_LABEL,
    max_unavailable,
    plan_deployment,
)
from seccomp_devcluster.controllers.workloads import (
    deletion_rank,
    format_time,
    scaled_value,
    template_hash,
)

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
TEMPLATE = {"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def pod(name: str, *, hash_label: str, key: str = HASH_LABEL, node: str | None = "node-1",
        ready: bool = True, phase: str = "Running", created: str = "2026-01-01T11:00:00Z",
        deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "labels": {key: hash_label},
                                "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T11:59:00Z"
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": "2026-01-01T11:00:00Z"}]
    spec = {"nodeName": node} if node else {}
    return {"metadata": metadata, "spec": spec,
            "status": {"phase": phase, "conditions": conditions}}


def deployment(replicas: int, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "default", "uid": "d-1", "generation": 3},
            "spec": {"replicas": replicas, "template": TEMPLATE, **spec}}


def node(name: str, *, ready: bool = True, labels: dict[str, str] | None = None,
         taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready",
                                       "status": "True" if ready else "Unknown"}]}}


def daemonset(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "agent", "namespace": "default", "uid": "ds-1",
                         "generation": 2},
            "spec": {"template": TEMPLATE, **spec}}


CURRENT = template_hash(TEMPLATE)


def test_template_hash_stable_and_safe() -> None:
    again = template_hash({"spec": TEMPLATE["spec"], "metadata": TEMPLATE["metadata"]})
    changed = template_hash({**TEMPLATE, "metadata": {"labels": {"app": "b"}}})

    assert CURRENT == again
    assert CURRENT != changed
    assert set(CURRENT) <= set("bcdfghjklmnpqrstvwxz2456789")


@pytest.mark.parametrize(("value", "total", "round_up", "expected"), [
    ("25%", 2, False, 0),
    ("25%", 2, True, 1),
    (3, 10, False, 3),
    ("2", 10, True, 2),
    (None, 10, True, 1),
])
def test_scaled_value_resolves_percent(value: Any, total: int, round_up: bool,
                                       expected: int) -> None:
    assert scaled_value(value, total, round_up=round_up, default=1) == expected


def test_deletion_rank_orders_cheapest_first() -> None:
    scheduled_ready_old = pod("a", hash_label="h", created="2026-01-01T10:00:00Z")
    scheduled_ready_new = pod("b", hash_label="h", created="2026-01-01T11:00:00Z")
    not_ready = pod("c", hash_label="h", ready=False)
    unscheduled = pod("d", hash_label="h", node=None, phase="Pending", ready=False)

    ordered = sorted([scheduled_ready_old, scheduled_ready_new, not_ready, unscheduled],
                     key=deletion_rank)

    assert [p["metadata"]["name"] for p in ordered] == ["d", "c", "b", "a"]


def test_deployment_creates_missing_replicas() -> None:
    plan = plan_deployment(deployment(3), [pod("a", hash_label=CURRENT)], NOW)

    assert plan.create == 2
    assert plan.delete == []
    assert plan.status["observedGeneration"] == 3
    assert plan.status["updatedReplicas"] == 1
    assert plan.status["unavailableReplicas"] == 2


def test_deployment_recreate_deletes_old_first() -> None:
    old = [pod("a", hash_label="old"), pod("b", hash_label="old")]

    plan = plan_deployment(deployment(2), old, NOW)

    assert plan.create == 0
    assert plan.delete == old


def test_deployment_waits_for_terminating_old_pods() -> None:
    plan = plan_deployment(deployment(2), [pod("a", hash_label="old", deleting=True)], NOW)

    assert plan.create == 0
    assert plan.delete == []
    assert plan.status["replicas"] == 0


def test_deployment_complete_status_conditions() -> None:
    pods = [pod("a", hash_label=CURRENT), pod("b", hash_label=CURRENT)]

    plan = plan_deployment(deployment(2), pods, NOW)

    conditions = {c["type"]: c for c in plan.status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Progressing"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conditions["Progressing"]["message"] == (
        f'ReplicaSet "web-{CURRENT}" has successfully progressed.')


def test_deployment_progress_deadline_exceeded() -> None:
    stale = format_time(NOW - datetime.timedelta(seconds=61))
    previous = {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 0,
                "availableReplicas": 0, "conditions": [
                    {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                     "message": f'ReplicaSet "web-{CURRENT}" is progressing.',
                     "lastUpdateTime": stale, "lastTransitionTime": stale}]}
    stuck = {**deployment(1, progressDeadlineSeconds=60), "status": previous}

    plan = plan_deployment(stuck, [pod("a", hash_label=CURRENT, ready=False)], NOW)

    progressing = next(c for c in plan.status["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "False"
    assert progressing["reason"] == "ProgressDeadlineExceeded"


def test_max_unavailable_resolves_fenceposts() -> None:
    default = {"type": "RollingUpdate",
               "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    rolling = deployment(4, strategy={"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})
    recreate = deployment(4, strategy={"type": "Recreate"})

    assert max_unavailable(deployment(2, strategy=default), 2) == 0
    assert max_unavailable(deployment(8, strategy=default), 8) == 2
    assert max_unavailable(rolling, 4) == 1
    assert max_unavailable(recreate, 4) == 0


def test_daemonset_skips_tainted_and_unready_nodes() -> None:
    nodes = [node("node-1"),
             node("node-2", taints=[{"key": "dedicated", "value": "db",
                                     "effect": "NoSchedule"}]),
             node("node-3", ready=False),
             node("node-4", taints=[{"key": "node.kubernetes.io/unschedulable",
                                     "effect": "NoSchedule"}])]

    plan = plan_daemonset(daemonset(), [], nodes, NOW)

    assert plan.create_on == ["node-1", "node-4"]
    assert plan.status["desiredNumberScheduled"] == 2


def test_daemonset_toleration_admits_tainted_node() -> None:
    spec = {**TEMPLATE["spec"],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db",
                             "effect": "NoSchedule"}]}
    tainted = node("node-2", taints=[{"key": "dedicated", "value": "db",
                                      "effect": "NoSchedule"}])

    assert should_run(spec, tainted)
    assert not should_run(TEMPLATE["spec"], tainted)
    assert any(t["key"] == "node.kubernetes.io/network-unavailable"
               for t in daemon_tolerations({"hostNetwork": True}))


def test_daemonset_deletes_pods_of_missing_nodes() -> None:
    orphan = pod("x", hash_label=CURRENT, key=DAEMON_HASH, node="gone")

    plan = plan_daemonset(daemonset(), [orphan], [node("node-1")], NOW)

    assert plan.delete == [orphan]
    assert plan.create_on == ["node-1"]
    assert plan.status["numberMisscheduled"] == 1


def test_daemonset_rolling_update_one_at_a_time() -> None:
    nodes = [node("node-1"), node("node-2")]
    old = [pod("a", hash_label="old", key=DAEMON_HASH, node="node-1"),
           pod("b", hash_label="old", key=DAEMON_HASH, node="node-2")]

    plan = plan_daemonset(daemonset(), old, nodes, NOW)

    assert [p["metadata"]["name"] for p in plan.delete] == ["a"]
    assert plan.create_on == []
    assert plan.status["updatedNumberScheduled"] == 0


def test_daemonset_waits_for_terminating_pod() -> None:
    going = pod("a", hash_label="old", key=DAEMON_HASH, node="node-1", deleting=True)

    plan = plan_daemonset(daemonset(), [going], [node("node-1")], NOW)

    assert plan.create_on == []
    assert plan.status["numberUnavailable"] == 1


def test_daemonset_on_delete_keeps_old_pods() -> None:
    old = pod("a", hash_label="old", key=DAEMON_HASH, node="node-1")

    plan = plan_daemonset(daemonset(updateStrategy={"type": "OnDelete"}), [old],
                          [node("node-1")], NOW)

    assert plan.delete == []
    assert plan.status["currentNumberScheduled"] == 1
