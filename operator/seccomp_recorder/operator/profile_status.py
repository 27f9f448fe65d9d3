"""A SeccompProfile's status from its spec and the node agents' reports, as pure functions.

Each node agent writes `status.nodeStatuses[<node>]`; the operator owns the rest of the
status. `compute_status` validates the spec and sums the node entries up against the
nodes that should have the file (`targeted_nodes`). `deletion_blockers` decides when a
deleted profile may go: when no node that still exists keeps the file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from seccomp_recorder.models.errors import describe_validation_error
from seccomp_recorder.models.meta import ConditionStatus
from seccomp_recorder.models.names import localhost_profile
from seccomp_recorder.models.profile import (
    Action,
    NodeProfileState,
    ProfileConditionType,
    ProfilePhase,
    SeccompProfileSpec,
    SeccompProfileStatus,
)
from seccomp_recorder.operator.conditions import find_condition, set_condition
from seccomp_recorder.operator.events import EventToPost, Reason
from seccomp_recorder.syscalls.check import Severity, find_problems

# Taint effects that keep a pod without a matching toleration off a node.
_BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


class ConditionReason(StrEnum):
    """Reasons of the profile's conditions."""

    VALID = "Valid"
    INVALID = "Invalid"
    INSTALLED = "Installed"
    INSTALLING = "Installing"
    NODE_ERROR = "NodeError"
    NO_NODES = "NoNodes"
    TERMINATING = "Terminating"


@dataclass(frozen=True)
class NodeInfo:
    """The facts about a Node that decide whether an agent serves it."""

    name: str
    ready: bool
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> NodeInfo:
        """Read a Node object as the API returns it."""
        metadata = body.get("metadata") or {}
        conditions = (body.get("status") or {}).get("conditions") or []
        ready = any(
            condition.get("type") == "Ready" and condition.get("status") == "True"
            for condition in conditions
        )
        taints = tuple((body.get("spec") or {}).get("taints") or ())
        return cls(
            name=metadata.get("name", ""),
            ready=ready,
            labels=dict(metadata.get("labels") or {}),
            taints=taints,
        )


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Return whether one of `tolerations` tolerates `taint`, by Kubernetes' rules.

    An empty key with operator Exists matches every taint; an empty effect matches every
    effect; Equal (the default operator) also needs the same value.
    """
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or "Equal"
        if operator == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def targeted_nodes(
    nodes: Iterable[NodeInfo],
    node_selector: Mapping[str, str],
    tolerations: Sequence[Mapping[str, Any]],
) -> frozenset[str]:
    """Return the names of the Ready nodes where the agent DaemonSet runs a pod.

    Those match the agent's node selector and tolerate every NoSchedule and NoExecute
    taint of the node.
    """
    targeted = set()
    for node in nodes:
        if not node.ready:
            continue
        if any(node.labels.get(key) != value for key, value in node_selector.items()):
            continue
        blocking = [taint for taint in node.taints if taint.get("effect") in _BLOCKING_EFFECTS]
        if all(tolerates(tolerations, taint) for taint in blocking):
            targeted.add(node.name)
    return frozenset(targeted)


def parse_spec(spec: Mapping[str, Any]) -> tuple[SeccompProfileSpec | None, list[str]]:
    """Parse and check a stored spec; return it (None when unparsable) and its errors.

    The errors come from the models (a spec the CRD schema let through but the models
    reject) and from `find_problems`. Warnings are not errors and are left out.
    """
    try:
        parsed = SeccompProfileSpec.model_validate(spec)
    except ValidationError as error:
        return None, describe_validation_error(error, (SeccompProfileSpec,))
    errors = [
        str(problem) for problem in find_problems(parsed) if problem.severity is Severity.ERROR
    ]
    return parsed, errors


def count_allowed(spec: SeccompProfileSpec) -> int:
    """Return the number of syscall names that any rule of `spec` allows."""
    return len({name for rule in spec.syscalls if rule.action is Action.ALLOW for name in rule.names})


@dataclass(frozen=True)
class ProfileView:
    """The parts of a stored SeccompProfile that its status is computed from."""

    namespace: str
    name: str
    generation: int | None
    spec: SeccompProfileSpec | None
    errors: tuple[str, ...]
    status: SeccompProfileStatus
    deleting: bool

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ProfileView:
        """Read a SeccompProfile as the API returns it; an unreadable status counts as empty.

        A name that cannot be a file name on the nodes is one of the errors.
        """
        metadata = body.get("metadata") or {}
        namespace = metadata.get("namespace", "")
        name = metadata.get("name", "")
        spec, errors = parse_spec(body.get("spec") or {})
        try:
            localhost_profile(namespace, name)
        except ValueError as error:
            errors.insert(
                0,
                f"metadata: {error}. Nodes store the profile as <namespace>/<name>.json, so"
                " no node installs it: create it again under a valid name",
            )
        try:
            status = SeccompProfileStatus.model_validate(body.get("status") or {})
        except ValidationError:
            status = SeccompProfileStatus()
        return cls(
            namespace=namespace,
            name=name,
            generation=metadata.get("generation"),
            spec=spec,
            errors=tuple(errors),
            status=status,
            deleting=bool(metadata.get("deletionTimestamp")),
        )

    @property
    def localhost_profile(self) -> str | None:
        """`localhostProfile` of the profile, or None when its name makes no valid file name."""
        try:
            return localhost_profile(self.namespace, self.name)
        except ValueError:
            return None


def compute_status(
    profile: ProfileView, targeted: Collection[str], *, now: datetime
) -> SeccompProfileStatus:
    """Compute the operator's part of the status of `profile`; nodeStatuses stay as they are.

    A node counts as installed when its entry is Installed at the current generation. It
    counts as failed when its entry is Error at the current generation or without one,
    because an agent that cannot parse a spec may not report a generation. Only targeted
    nodes count. The phase is Terminating while deleting, Error when the spec is invalid or a
    node failed, else Installed, Partial or Pending by the number of installed nodes.
    """
    status = profile.status
    generation = profile.generation
    entries = {node: entry for node, entry in status.node_statuses.items() if node in targeted}
    installed = sorted(
        node
        for node, entry in entries.items()
        if entry.state is NodeProfileState.INSTALLED and entry.observed_generation == generation
    )
    failed = sorted(
        node
        for node, entry in entries.items()
        if entry.state is NodeProfileState.ERROR
        and entry.observed_generation in (None, generation)
    )
    conditions = status.conditions

    def set_(kind: ProfileConditionType, value: ConditionStatus, reason: ConditionReason,
             message: str) -> None:
        nonlocal conditions
        conditions = set_condition(
            conditions, kind, value, reason, message, now=now, generation=generation
        )

    if profile.errors:
        set_(ProfileConditionType.VALID, ConditionStatus.FALSE, ConditionReason.INVALID,
             "; ".join(profile.errors))
    else:
        set_(ProfileConditionType.VALID, ConditionStatus.TRUE, ConditionReason.VALID,
             "the profile passed every check")

    waiting = sorted(set(targeted) - set(installed) - set(failed))
    if profile.deleting:
        phase = ProfilePhase.TERMINATING
        set_(ProfileConditionType.INSTALLED, ConditionStatus.FALSE, ConditionReason.TERMINATING,
             "the profile is being deleted; the agents remove its file from the nodes")
    elif profile.errors:
        phase = ProfilePhase.ERROR
        set_(ProfileConditionType.INSTALLED, ConditionStatus.FALSE, ConditionReason.INVALID,
             "the profile is invalid, so no node installs it")
    elif failed:
        phase = ProfilePhase.ERROR
        details = "; ".join(f"{node}: {entries[node].message}" for node in failed)
        set_(ProfileConditionType.INSTALLED, ConditionStatus.FALSE, ConditionReason.NODE_ERROR,
             f"installation failed on {len(failed)} of {len(targeted)} nodes: {details}")
    elif not targeted:
        phase = ProfilePhase.PENDING
        set_(ProfileConditionType.INSTALLED, ConditionStatus.FALSE, ConditionReason.NO_NODES,
             "no Ready node runs the agent: check the agent's node selector and tolerations")
    elif not waiting:
        phase = ProfilePhase.INSTALLED
        set_(ProfileConditionType.INSTALLED, ConditionStatus.TRUE, ConditionReason.INSTALLED,
             f"installed on all {len(targeted)} nodes")
    else:
        phase = ProfilePhase.PARTIAL if installed else ProfilePhase.PENDING
        set_(ProfileConditionType.INSTALLED, ConditionStatus.FALSE, ConditionReason.INSTALLING,
             f"installed on {len(installed)} of {len(targeted)} nodes; waiting for"
             f" {', '.join(waiting)}")

    return status.model_copy(
        update={
            "phase": phase,
            "localhost_profile": profile.localhost_profile,
            "syscall_count": count_allowed(profile.spec) if profile.spec is not None else None,
            "nodes_installed": len(installed),
            "nodes_targeted": len(targeted),
            "nodes": f"{len(installed)}/{len(targeted)}",
            "observed_generation": generation,
            "conditions": conditions,
        }
    )


# The status fields that the operator writes; agents write nodeStatuses.
OPERATOR_FIELDS = (
    "phase",
    "localhostProfile",
    "syscallCount",
    "nodesInstalled",
    "nodesTargeted",
    "nodes",
    "observedGeneration",
    "conditions",
)


def status_patch(old: Mapping[str, Any], new: SeccompProfileStatus) -> dict[str, Any]:
    """Return the merge patch of the operator's status fields from `old` to `new`.

    Empty when nothing changed. Fields of `new` that are None are removed.
    """
    document = new.model_dump(mode="json", exclude_none=True)
    patch: dict[str, Any] = {}
    for key in OPERATOR_FIELDS:
        if old.get(key) != document.get(key):
            patch[key] = document.get(key)
    return patch


def status_events(
    old: SeccompProfileStatus, new: SeccompProfileStatus, *, generation: int | None
) -> list[EventToPost]:
    """Return the Events that announce the change from `old` to `new`.

    ProfileInvalid when the spec turns invalid or its errors change, ProfileNodeError when
    the failing nodes or their messages change, ProfileReady when every node has it.
    """
    events = []
    old_valid = find_condition(old.conditions, ProfileConditionType.VALID)
    new_valid = find_condition(new.conditions, ProfileConditionType.VALID)
    if (
        new_valid is not None
        and new_valid.status is ConditionStatus.FALSE
        and (
            old_valid is None
            or old_valid.status is not ConditionStatus.FALSE
            or old_valid.message != new_valid.message
        )
    ):
        events.append(
            EventToPost(
                Reason.PROFILE_INVALID,
                f"the profile is invalid and no node installs it: {new_valid.message}",
                warning=True,
            )
        )
    old_installed = find_condition(old.conditions, ProfileConditionType.INSTALLED)
    new_installed = find_condition(new.conditions, ProfileConditionType.INSTALLED)
    if new_installed is not None and new_installed.reason == ConditionReason.NODE_ERROR and (
        old_installed is None or old_installed.message != new_installed.message
    ):
        events.append(
            EventToPost(Reason.PROFILE_NODE_ERROR, new_installed.message, warning=True)
        )
    if new.phase is ProfilePhase.INSTALLED and (
        old.phase is not ProfilePhase.INSTALLED or old.observed_generation != generation
    ):
        events.append(
            EventToPost(
                Reason.PROFILE_READY,
                f"installed on {new.nodes_installed} nodes as {new.localhost_profile}",
            )
        )
    return events


def deletion_blockers(status: SeccompProfileStatus, existing_nodes: Collection[str]) -> list[str]:
    """Return the nodes that keep a deleted profile's file, in name order.

    Those are the nodes that still exist and have an entry that is not Removed. Entries
    of nodes that no longer exist are ignored, so a deletion never waits for a node that
    is gone. An empty list means the profile may go.
    """
    return sorted(
        node
        for node, entry in status.node_statuses.items()
        if node in existing_nodes and entry.state is not NodeProfileState.REMOVED
    )
