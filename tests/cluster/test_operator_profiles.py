"""The operator keeps SeccompProfile statuses true to the node agents' reports.

The tests create fake Node objects that only their operator targets, and patch
`status.nodeStatuses` by hand as node agents would. No agent runs here.
"""

from __future__ import annotations

from typing import Any

import pytest
from operator_fixtures import (  # noqa: F401 (fixtures are found by their registered names)
    StartOperator,
    fake_nodes_fixture,
    kube_fixture,
    namespace_fixture,
    start_operator_fixture,
)
from operator_helpers import (
    FINALIZER,
    PROFILES,
    FakeNodes,
    Kube,
    OperatorProcess,
    condition,
    wait_for,
)

pytestmark = pytest.mark.cluster

SPEC = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}],
}


def profile_body(namespace: str, name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": name, "namespace": namespace},
        "spec": SPEC if spec is None else spec,
    }


def installed(generation: int) -> dict[str, Any]:
    return {"state": "Installed", "observedGeneration": generation, "message": ""}


def wait_for_phase(
    kube: Kube, namespace: str, name: str, phase: str, nodes: str,
    operator: OperatorProcess | None = None,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        found = kube.get(PROFILES, namespace, name)
        status = (found or {}).get("status") or {}
        return found if status.get("phase") == phase and status.get("nodes") == nodes else None

    profile: dict[str, Any] = wait_for(
        f"profile {name} to be {phase} on {nodes} nodes", reached, operator=operator
    )
    return profile


def test_status_counts_installed_nodes(
    kube: Kube, namespace: str, fake_nodes: FakeNodes, start_operator: StartOperator
) -> None:
    node_a = fake_nodes.add("a")
    node_b = fake_nodes.add("b")
    fake_nodes.add("c", ready=False)
    operator = start_operator(AGENT_NODE_SELECTOR=fake_nodes.selector)
    kube.create(PROFILES, profile_body(namespace, "web"))

    pending = wait_for_phase(kube, namespace, "web", "Pending", "0/2", operator)
    status = pending["status"]
    assert status["localhostProfile"] == f"seccomp-recorder/{namespace}/web.json"
    assert status["syscallCount"] == 3
    assert status["nodesTargeted"] == 2
    assert status["observedGeneration"] == 1
    assert condition(pending, "Valid")["status"] == "True"
    assert FINALIZER in pending["metadata"]["finalizers"]

    kube.patch_status(PROFILES, namespace, "web", {"nodeStatuses": {node_a: installed(1)}})
    wait_for_phase(kube, namespace, "web", "Partial", "1/2", operator)

    kube.patch_status(PROFILES, namespace, "web", {"nodeStatuses": {node_b: installed(1)}})
    done = wait_for_phase(kube, namespace, "web", "Installed", "2/2", operator)
    assert condition(done, "Installed")["status"] == "True"
    wait_for("a ProfileReady event",
             lambda: "ProfileReady" in kube.reasons(namespace, "SeccompProfile", "web"))

    failure = {"state": "Error", "observedGeneration": 1, "message": "disk full"}
    kube.patch_status(PROFILES, namespace, "web", {"nodeStatuses": {node_b: failure}})
    failed = wait_for_phase(kube, namespace, "web", "Error", "1/2", operator)
    assert "disk full" in condition(failed, "Installed")["message"]
    wait_for("a ProfileNodeError event",
             lambda: "ProfileNodeError" in kube.reasons(namespace, "SeccompProfile", "web"))


def test_new_spec_needs_new_installation(
    kube: Kube, namespace: str, fake_nodes: FakeNodes, start_operator: StartOperator
) -> None:
    node = fake_nodes.add("a")
    operator = start_operator(AGENT_NODE_SELECTOR=fake_nodes.selector)
    kube.create(PROFILES, profile_body(namespace, "web"))
    kube.patch_status(PROFILES, namespace, "web", {"nodeStatuses": {node: installed(1)}})
    wait_for_phase(kube, namespace, "web", "Installed", "1/1", operator)

    spec = {**SPEC, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    kube.patch(PROFILES, namespace, "web", {"spec": spec})
    changed = wait_for_phase(kube, namespace, "web", "Pending", "0/1", operator)
    assert changed["status"]["observedGeneration"] == 2
    assert changed["status"]["syscallCount"] == 1


def test_node_changes_reach_the_counts(
    kube: Kube, namespace: str, fake_nodes: FakeNodes, start_operator: StartOperator
) -> None:
    node_a = fake_nodes.add("a")
    operator = start_operator(AGENT_NODE_SELECTOR=fake_nodes.selector)
    kube.create(PROFILES, profile_body(namespace, "web"))
    kube.patch_status(PROFILES, namespace, "web", {"nodeStatuses": {node_a: installed(1)}})
    wait_for_phase(kube, namespace, "web", "Installed", "1/1", operator)

    node_b = fake_nodes.add("b")
    wait_for_phase(kube, namespace, "web", "Partial", "1/2", operator)
    fake_nodes.set_ready(node_a, False)
    wait_for_phase(kube, namespace, "web", "Pending", "0/1", operator)
    fake_nodes.set_ready(node_a, True)
    wait_for_phase(kube, namespace, "web", "Partial", "1/2", operator)
    fake_nodes.remove(node_b)
    wait_for_phase(kube, namespace, "web", "Installed", "1/1", operator)


def test_invalid_profile_is_an_error(
    kube: Kube, namespace: str, fake_nodes: FakeNodes, start_operator: StartOperator
) -> None:
    fake_nodes.add("a")
    operator = start_operator(AGENT_NODE_SELECTOR=fake_nodes.selector)
    spec = {**SPEC, "syscalls": [{"names": ["raed"], "action": "SCMP_ACT_ALLOW"}]}
    kube.create(PROFILES, profile_body(namespace, "typo", spec))

    failed = wait_for_phase(kube, namespace, "typo", "Error", "0/1", operator)
    valid = condition(failed, "Valid")
    assert valid["status"] == "False"
    assert valid["reason"] == "Invalid"
    assert "raed" in valid["message"]
    events = wait_for(
        "a ProfileInvalid event",
        lambda: [event for event in kube.events(namespace, "SeccompProfile", "typo")
                 if event["reason"] == "ProfileInvalid"],
    )
    assert events[0]["type"] == "Warning"
    assert "raed" in events[0]["message"]


def test_name_too_long_for_file_is_an_error(
    kube: Kube, namespace: str, fake_nodes: FakeNodes, start_operator: StartOperator
) -> None:
    # A real API server rejects this name (the CRD's maxLength is 250); the emulator does not.
    name = "p" * 252
    fake_nodes.add("a")
    operator = start_operator(AGENT_NODE_SELECTOR=fake_nodes.selector)
    kube.create(PROFILES, profile_body(namespace, name))

    failed = wait_for_phase(kube, namespace, name, "Error", "0/1", operator)
    valid = condition(failed, "Valid")
    assert valid["status"] == "False"
    assert "invalid profile name" in valid["message"]
    assert "localhostProfile" not in failed["status"]
    assert "ValueError" not in operator.log()


def test_deletion_waits_for_existing_nodes(
    kube: Kube, namespace: str, fake_nodes: FakeNodes, start_operator: StartOperator
) -> None:
    node_a = fake_nodes.add("a")
    node_b = fake_nodes.add("b")
    operator = start_operator(AGENT_NODE_SELECTOR=fake_nodes.selector)
    kube.create(PROFILES, profile_body(namespace, "web"))
    kube.patch_status(PROFILES, namespace, "web",
                      {"nodeStatuses": {node_a: installed(1), node_b: installed(1)}})
    wait_for_phase(kube, namespace, "web", "Installed", "2/2", operator)
    # kopf adds its finalizer right after its first status patch, not with it.
    def finalized() -> bool:
        profile = kube.get(PROFILES, namespace, "web") or {}
        return FINALIZER in profile.get("metadata", {}).get("finalizers", [])

    wait_for("the operator's finalizer", finalized, operator=operator)

    kube.delete(PROFILES, namespace, "web")
    wait_for_phase(kube, namespace, "web", "Terminating", "2/2", operator)
    wait_for("a ProfileRemovalPending event",
             lambda: "ProfileRemovalPending" in kube.reasons(namespace, "SeccompProfile", "web"))

    # Node a removes the file; node b is deleted with its agent and is not waited for.
    removed = {"state": "Removed", "observedGeneration": 1, "message": ""}
    kube.patch_status(PROFILES, namespace, "web", {"nodeStatuses": {node_a: removed}})
    still_there = kube.get(PROFILES, namespace, "web")
    assert still_there is not None
    fake_nodes.remove(node_b)
    wait_for("the profile to be gone", lambda: kube.get(PROFILES, namespace, "web") is None,
             operator=operator)
    wait_for("a ProfileReleased event",
             lambda: "ProfileReleased" in kube.reasons(namespace, "SeccompProfile", "web"))


def test_deletion_without_entries_is_immediate(
    kube: Kube, namespace: str, fake_nodes: FakeNodes, start_operator: StartOperator
) -> None:
    fake_nodes.add("a")
    operator = start_operator(AGENT_NODE_SELECTOR=fake_nodes.selector)
    kube.create(PROFILES, profile_body(namespace, "web"))
    wait_for_phase(kube, namespace, "web", "Pending", "0/1", operator)
    kube.delete(PROFILES, namespace, "web")
    wait_for("the profile to be gone", lambda: kube.get(PROFILES, namespace, "web") is None,
             operator=operator)
