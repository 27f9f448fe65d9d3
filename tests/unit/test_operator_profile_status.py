"""A SeccompProfile's status from its spec and the node entries, and its deletion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from seccomp_recorder.models.meta import ConditionStatus
from seccomp_recorder.models.profile import ProfilePhase, SeccompProfileStatus
from seccomp_recorder.operator.conditions import find_condition
from seccomp_recorder.operator.events import Reason
from seccomp_recorder.operator.profile_status import (
    NodeInfo,
    ProfileView,
    compute_status,
    deletion_blockers,
    status_events,
    status_patch,
    targeted_nodes,
    tolerates,
)

NOW = datetime(2026, 1, 31, 8, 0, 0, tzinfo=UTC)
VALID_SPEC = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
        {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ],
}


def profile_body(
    *,
    spec: dict[str, Any] | None = None,
    node_statuses: dict[str, Any] | None = None,
    generation: int = 2,
    deleting: bool = False,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "namespace": "shop", "generation": generation}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-31T08:00:00Z"
    return {
        "metadata": metadata,
        "spec": VALID_SPEC if spec is None else spec,
        "status": {**(status or {}), "nodeStatuses": node_statuses or {}},
    }


def entry(state: str, generation: int | None = 2, message: str = "") -> dict[str, Any]:
    document: dict[str, Any] = {"state": state, "message": message}
    if generation is not None:
        document["observedGeneration"] = generation
    return document


def compute(body: dict[str, Any], targeted: set[str]) -> SeccompProfileStatus:
    return compute_status(ProfileView.from_body(body), targeted, now=NOW)


def condition(status: SeccompProfileStatus, condition_type: str) -> Any:
    found = find_condition(status.conditions, condition_type)
    assert found is not None, f"no condition {condition_type}"
    return found


def node(name: str, *, ready: bool = True, labels: dict[str, str] | None = None,
         taints: tuple[dict[str, Any], ...] = ()) -> NodeInfo:
    return NodeInfo(name=name, ready=ready, labels=labels or {"kubernetes.io/os": "linux"},
                    taints=taints)


LINUX = {"kubernetes.io/os": "linux"}
EVERYTHING = ({"operator": "Exists"},)


def test_targeted_nodes_are_ready_and_selected() -> None:
    nodes = [
        node("a"),
        node("b", ready=False),
        node("c", labels={"kubernetes.io/os": "windows"}),
        node("d", labels={"kubernetes.io/os": "linux", "role": "gpu"}),
    ]
    assert targeted_nodes(nodes, LINUX, EVERYTHING) == {"a", "d"}


def test_untolerated_taint_keeps_agent_off() -> None:
    tainted = node("a", taints=({"key": "gpu", "value": "yes", "effect": "NoSchedule"},))
    soft = node("b", taints=({"key": "gpu", "effect": "PreferNoSchedule"},))
    assert targeted_nodes([tainted, soft], LINUX, ()) == {"b"}
    assert targeted_nodes([tainted], LINUX, EVERYTHING) == {"a"}
    assert targeted_nodes([tainted], LINUX, ({"key": "gpu", "operator": "Exists"},)) == {"a"}


def test_toleration_matching_follows_kubernetes() -> None:
    taint = {"key": "gpu", "value": "yes", "effect": "NoExecute"}
    assert tolerates([{"key": "gpu", "value": "yes"}], taint)
    assert tolerates([{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoExecute"}],
                     taint)
    assert not tolerates([{"key": "gpu", "value": "no"}], taint)
    assert not tolerates([{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}], taint)
    assert not tolerates([{"key": "other", "operator": "Exists"}], taint)


def test_node_info_reads_readiness_and_taints() -> None:
    info = NodeInfo.from_body(
        {
            "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    assert info == NodeInfo(name="a", ready=True, labels={"x": "y"},
                            taints=({"key": "k", "effect": "NoSchedule"},))
    assert not NodeInfo.from_body({"metadata": {"name": "b"}}).ready


def test_all_targeted_installed_is_installed() -> None:
    body = profile_body(node_statuses={"a": entry("Installed"), "b": entry("Installed")})
    status = compute(body, {"a", "b"})
    assert status.phase is ProfilePhase.INSTALLED
    assert status.nodes == "2/2"
    assert status.nodes_installed == 2
    assert status.nodes_targeted == 2
    assert status.localhost_profile == "seccomp-recorder/shop/web.json"
    assert status.syscall_count == 3
    assert status.observed_generation == 2
    assert condition(status, "Installed").status is ConditionStatus.TRUE
    assert condition(status, "Valid").status is ConditionStatus.TRUE


def test_some_installed_is_partial() -> None:
    body = profile_body(node_statuses={"a": entry("Installed"), "b": entry("Pending")})
    status = compute(body, {"a", "b", "c"})
    assert status.phase is ProfilePhase.PARTIAL
    assert status.nodes == "1/3"
    assert "waiting for b, c" in condition(status, "Installed").message


def test_none_installed_is_pending() -> None:
    status = compute(profile_body(), {"a"})
    assert status.phase is ProfilePhase.PENDING
    assert status.nodes == "0/1"


def test_no_targeted_node_is_pending() -> None:
    status = compute(profile_body(), set())
    assert status.phase is ProfilePhase.PENDING
    assert condition(status, "Installed").reason == "NoNodes"


def test_older_generation_does_not_count() -> None:
    body = profile_body(node_statuses={"a": entry("Installed", generation=1)})
    status = compute(body, {"a"})
    assert status.phase is ProfilePhase.PENDING
    assert status.nodes_installed == 0


def test_untargeted_node_does_not_count() -> None:
    body = profile_body(node_statuses={"a": entry("Installed"), "gone": entry("Installed")})
    status = compute(body, {"a"})
    assert status.nodes == "1/1"
    assert status.phase is ProfilePhase.INSTALLED


def test_node_error_is_error() -> None:
    body = profile_body(node_statuses={
        "a": entry("Installed"),
        "b": entry("Error", generation=None, message="base profile 'base' not found"),
    })
    status = compute(body, {"a", "b"})
    assert status.phase is ProfilePhase.ERROR
    installed = condition(status, "Installed")
    assert installed.reason == "NodeError"
    assert "b: base profile 'base' not found" in installed.message


def test_stale_node_error_is_ignored() -> None:
    body = profile_body(node_statuses={"a": entry("Error", generation=1, message="old")})
    assert compute(body, {"a"}).phase is ProfilePhase.PENDING


def test_invalid_spec_is_error() -> None:
    spec = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["raed"], "action": "SCMP_ACT_ALLOW"}]}
    status = compute(profile_body(spec=spec), {"a"})
    assert status.phase is ProfilePhase.ERROR
    valid = condition(status, "Valid")
    assert valid.status is ConditionStatus.FALSE
    assert "raed" in valid.message
    assert condition(status, "Installed").reason == "Invalid"


def test_unparsable_spec_is_error() -> None:
    spec = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}
    status = compute(profile_body(spec=spec), {"a"})
    assert status.phase is ProfilePhase.ERROR
    assert status.syscall_count is None
    assert "names" in condition(status, "Valid").message


def test_deleting_profile_is_terminating() -> None:
    body = profile_body(node_statuses={"a": entry("Installed")}, deleting=True)
    assert compute(body, {"a"}).phase is ProfilePhase.TERMINATING


def test_patch_holds_only_changed_operator_fields() -> None:
    body = profile_body(node_statuses={"a": entry("Installed")})
    status = compute(body, {"a"})
    patch = status_patch(body["status"], status)
    assert patch["phase"] == "Installed"
    assert "nodeStatuses" not in patch
    written = {**body["status"], **patch}
    assert status_patch(written, compute({**body, "status": written}, {"a"})) == {}


def test_invalid_profile_is_announced_once() -> None:
    spec = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["raed"], "action": "SCMP_ACT_ALLOW"}]}
    body = profile_body(spec=spec)
    first = compute(body, {"a"})
    events = status_events(SeccompProfileStatus(), first, generation=2)
    assert [event.reason for event in events] == [Reason.PROFILE_INVALID]
    assert events[0].warning
    assert status_events(first, compute(body, {"a"}), generation=2) == []


def test_installation_and_failure_are_announced() -> None:
    pending = compute(profile_body(), {"a"})
    installed = compute(profile_body(node_statuses={"a": entry("Installed")}), {"a"})
    failed = compute(profile_body(node_statuses={"a": entry("Error", message="disk full")}), {"a"})
    assert [event.reason for event in status_events(pending, installed, generation=2)] == [
        Reason.PROFILE_READY
    ]
    assert status_events(installed, installed, generation=2) == []
    assert [event.reason for event in status_events(pending, failed, generation=2)] == [
        Reason.PROFILE_NODE_ERROR
    ]


def status_with(node_statuses: dict[str, Any]) -> SeccompProfileStatus:
    return SeccompProfileStatus.model_validate({"nodeStatuses": node_statuses})


def test_deletion_waits_for_existing_nodes() -> None:
    status = status_with({"a": entry("Installed"), "b": entry("Removed"), "c": entry("Pending")})
    assert deletion_blockers(status, {"a", "b", "c"}) == ["a", "c"]


def test_deletion_ignores_removed_nodes() -> None:
    status = status_with({"gone": entry("Installed"), "b": entry("Removed")})
    assert deletion_blockers(status, {"b", "other"}) == []


def test_deletion_without_entries_goes_at_once() -> None:
    assert deletion_blockers(status_with({}), {"a", "b"}) == []


@pytest.mark.parametrize("length", [251, 253])
def test_name_too_long_for_file_is_error(length: int) -> None:
    # The API server rejects these names (maxLength 250), but an emulator may not.
    body = profile_body(node_statuses={"a": entry("Installed")})
    body["metadata"]["name"] = "p" * length

    status = compute(body, {"a"})

    assert status.phase is ProfilePhase.ERROR
    assert status.localhost_profile is None
    valid = condition(status, "Valid")
    assert valid.status is ConditionStatus.FALSE
    assert valid.message.startswith(f'metadata: invalid profile name "{"p" * length}"')
    assert "use at most 250 lower-case letters" in valid.message
    assert "create it again under a valid name" in valid.message
    assert condition(status, "Installed").reason == "Invalid"
    assert status.syscall_count == 3


def test_name_error_is_announced() -> None:
    body = profile_body()
    body["metadata"]["name"] = "p" * 252
    view = ProfileView.from_body(body)

    events = status_events(view.status, compute_status(view, {"a"}, now=NOW), generation=2)

    assert [event.reason for event in events] == [Reason.PROFILE_INVALID]
    assert "invalid profile name" in events[0].message
