"""The SeccompProfile status and the limits that Kubernetes puts on profile resources."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from seccomp_recorder.models.errors import describe_validation_error
from seccomp_recorder.models.formats import kubernetes_document, parse_profile
from seccomp_recorder.models.meta import Condition, ConditionStatus
from seccomp_recorder.models.profile import (
    NodeProfileState,
    NodeProfileStatus,
    ProfileConditionType,
    ProfilePhase,
    SeccompProfile,
    SeccompProfileSpec,
    SeccompProfileStatus,
)

MODELS = [SeccompProfile, SeccompProfileSpec, SeccompProfileStatus, NodeProfileStatus, Condition]
HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def resource(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": "redis", "namespace": "db"},
        "spec": {"defaultAction": "SCMP_ACT_ERRNO"},
    }
    document.update(overrides)
    return document


def status_messages(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        SeccompProfileStatus.model_validate(document)
    return describe_validation_error(caught.value, MODELS)


FULL_STATUS = {
    "phase": "Partial",
    "localhostProfile": "seccomp-recorder/db/redis.json",
    "syscallCount": 81,
    "nodesInstalled": 2,
    "nodesTargeted": 3,
    "nodes": "2/3",
    "nodeStatuses": {
        "node-1": {
            "state": "Installed",
            "observedGeneration": 4,
            "contentHash": HASH,
            "lastTransitionTime": "2025-01-31T08:15:00Z",
        },
        "node-2.example.com": {"state": "Error", "message": "disk full"},
    },
    "observedGeneration": 4,
    "conditions": [
        {
            "type": "Valid",
            "status": "True",
            "reason": "Valid",
            "message": "",
            "lastTransitionTime": "2025-01-31T08:14:00Z",
        },
        {
            "type": "Installed",
            "status": "False",
            "reason": "NodesFailed",
            "message": "node-2.example.com: disk full",
            "lastTransitionTime": "2025-01-31T08:15:00Z",
            "observedGeneration": 4,
        },
    ],
}


def test_status_reads_every_field() -> None:
    status = SeccompProfileStatus.model_validate(FULL_STATUS)

    assert status.phase is ProfilePhase.PARTIAL
    assert status.localhost_profile == "seccomp-recorder/db/redis.json"
    assert status.syscall_count == 81
    assert status.nodes_installed == 2
    assert status.nodes_targeted == 3
    assert status.nodes == "2/3"
    assert status.observed_generation == 4
    installed = status.node_statuses["node-1"]
    assert installed.state is NodeProfileState.INSTALLED
    assert installed.content_hash == HASH
    assert installed.observed_generation == 4
    assert installed.last_transition_time == datetime(2025, 1, 31, 8, 15, tzinfo=UTC)
    failed = status.node_statuses["node-2.example.com"]
    assert failed.state is NodeProfileState.ERROR
    assert failed.message == "disk full"
    assert [condition.type for condition in status.conditions] == [
        ProfileConditionType.VALID,
        ProfileConditionType.INSTALLED,
    ]
    assert status.conditions[1].status is ConditionStatus.FALSE
    assert status.conditions[1].observed_generation == 4


def test_status_round_trips_through_json() -> None:
    status = SeccompProfileStatus.model_validate(FULL_STATUS)

    document = status.model_dump(mode="json", exclude_none=True)

    assert document["nodeStatuses"]["node-1"]["contentHash"] == HASH
    assert document["nodeStatuses"]["node-1"]["lastTransitionTime"] == "2025-01-31T08:15:00Z"
    assert document["conditions"][1]["lastTransitionTime"] == "2025-01-31T08:15:00Z"
    assert SeccompProfileStatus.model_validate(document) == status


def test_status_defaults() -> None:
    status = SeccompProfileStatus()

    assert status.phase is None
    assert status.node_statuses == {}
    assert status.conditions == ()


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"phase": "Ready"}, "phase: Input should be"),
        ({"syscallCount": -1}, "syscallCount: Input should be greater than or equal to 0"),
        ({"nodes": "2 of 3"}, "nodes: String should match pattern"),
        (
            {"nodeStatuses": {"node-1": {"state": "Gone"}}},
            "nodeStatuses.node-1.state: Input should be",
        ),
        ({"nodeStatuses": {"node-1": {}}}, "nodeStatuses.node-1.state: required field is missing"),
        (
            {"nodeStatuses": {"node-1": {"state": "Installed", "contentHash": "ABC"}}},
            "nodeStatuses.node-1.contentHash: String should match pattern",
        ),
        (
            {"nodeStatuses": {"Node_1": {"state": "Installed"}}},
            'nodeStatuses.Node_1.[key]: invalid node name "Node_1"',
        ),
        (
            {"conditions": [{"type": "Valid", "status": "True", "reason": "Valid"}]},
            "conditions[0].lastTransitionTime: required field is missing",
        ),
        (
            {"conditions": [FULL_STATUS["conditions"][0], FULL_STATUS["conditions"][0]]},  # type: ignore[index]
            'conditions: conditions of type "Valid" listed more than once',
        ),
    ],
)
def test_invalid_status_rejected(document: dict[str, Any], expected: str) -> None:
    messages = status_messages(document)

    assert any(message.startswith(expected) for message in messages), messages


def test_resource_keeps_status() -> None:
    profile = SeccompProfile.model_validate(resource(status=FULL_STATUS))

    assert profile.status is not None
    assert profile.status.phase is ProfilePhase.PARTIAL


def test_resource_ignores_foreign_status_fields() -> None:
    # A Security Profiles Operator profile exported from a cluster carries these.
    profile = SeccompProfile.model_validate(
        resource(status={"status": "Installed", "activeWorkloads": ["db/redis"]})
    )

    assert profile.status == SeccompProfileStatus()


def test_rendered_profile_leaves_status_out() -> None:
    profile = SeccompProfile.model_validate(resource(status=FULL_STATUS))

    assert "status" not in kubernetes_document(profile)


def test_exported_profile_with_status_parses() -> None:
    text = """
apiVersion: seccomp-recorder.io/v1alpha1
kind: SeccompProfile
metadata: {name: redis, namespace: db, uid: 1f0e, resourceVersion: "12"}
spec: {defaultAction: SCMP_ACT_ERRNO}
status: {phase: Installed, nodes: 1/1, syscallCount: 0}
"""
    parsed = parse_profile(text)

    assert isinstance(parsed, SeccompProfile)
    assert parsed.status is not None
    assert parsed.status.nodes == "1/1"


def test_profile_name_fits_a_file_name() -> None:
    longest = "p" * 250

    assert (
        SeccompProfile.model_validate(resource(metadata={"name": longest})).metadata.name == longest
    )
    with pytest.raises(ValidationError) as caught:
        SeccompProfile.model_validate(resource(metadata={"name": longest + "p"}))
    messages = describe_validation_error(caught.value, MODELS)
    assert messages == [
        (
            f'metadata: profile name "{longest}p" is 251 characters long: use at most 250,'
            " because nodes store the profile as <name>.json and a file name has at most 255 bytes"
        )
    ]


def test_spec_schema_has_descriptions() -> None:
    properties = SeccompProfileSpec.model_json_schema(by_alias=True)["properties"]

    for name, field in properties.items():
        assert field.get("description"), name
