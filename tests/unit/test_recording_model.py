"""The SeccompRecording and SeccompRecordingResult models: fields, defaults and rejections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from seccomp_recorder.models.errors import describe_validation_error
from seccomp_recorder.models.meta import Condition, ConditionStatus, format_timestamp
from seccomp_recorder.models.profile import Action, Architecture
from seccomp_recorder.models.recording import (
    ContainerRecordingState,
    MergeStrategy,
    ProfileTemplate,
    RecordedContainer,
    RecordingConditionType,
    RecordingPhase,
    SeccompRecording,
    SeccompRecordingSpec,
    SeccompRecordingStatus,
    parse_duration,
)
from seccomp_recorder.models.result import SeccompRecordingResult, SeccompRecordingResultSpec
from seccomp_recorder.models.selectors import LabelSelector, LabelSelectorRequirement

MODELS: list[type[BaseModel]] = [
    SeccompRecording,
    SeccompRecordingSpec,
    ProfileTemplate,
    LabelSelector,
    LabelSelectorRequirement,
    SeccompRecordingStatus,
    RecordedContainer,
    Condition,
    SeccompRecordingResult,
    SeccompRecordingResultSpec,
]

POD_UID = "0b4a3f1e-6c2d-4c8e-9d5f-3a1b2c4d5e6f"


def recording_spec(**fields: Any) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {"app": "redis"}}, **fields}


def messages_for(model: type[BaseModel], document: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(document)
    return describe_validation_error(caught.value, MODELS)


def assert_rejected(model: type[BaseModel], document: dict[str, Any], expected: str) -> None:
    messages = messages_for(model, document)
    assert any(message.startswith(expected) for message in messages), messages


# Durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("1m500ms", 60.5),
        ("30s1m", 90.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration_returns_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "10", "m", "1d", "-1m", "1 m", "1H", ".5s", "1.s", "10us", "1h" * 20]
)
def test_parse_duration_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration(text)

    assert '"90s", "10m" or "1h30m"' in str(caught.value)


# SeccompRecordingSpec


def test_spec_defaults() -> None:
    spec = SeccompRecordingSpec.model_validate(recording_spec())

    assert spec.containers is None
    assert spec.merge_strategy is MergeStrategy.CONTAINERS
    assert spec.profile_template == ProfileTemplate()
    assert spec.profile_template.default_action is Action.ERRNO
    assert spec.profile_template.default_errno_ret is None
    assert spec.profile_template.architectures == ()
    assert spec.profile_template.base_profile_name is None
    assert spec.active is True
    assert spec.duration is None
    assert spec.duration_seconds() is None


def test_spec_reads_every_field() -> None:
    spec = SeccompRecordingSpec.model_validate(
        recording_spec(
            containers=["redis", "init-config"],
            mergeStrategy="None",
            profileTemplate={
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 38,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "baseProfileName": "runc-base",
            },
            active=False,
            duration="1h30m",
        )
    )

    assert spec.pod_selector.match_labels == {"app": "redis"}
    assert spec.containers == ("redis", "init-config")
    assert spec.merge_strategy is MergeStrategy.NONE
    assert spec.profile_template.default_errno_ret == 38
    assert spec.profile_template.architectures == (Architecture.X86_64, Architecture.X86)
    assert spec.profile_template.base_profile_name == "runc-base"
    assert spec.active is False
    assert spec.duration == "1h30m"
    assert spec.duration_seconds() == 5400.0


def test_spec_writes_camel_case() -> None:
    spec = SeccompRecordingSpec.model_validate(recording_spec(duration="10m"))

    document = spec.model_dump(mode="json", exclude_none=True)

    assert document == {
        "podSelector": {"matchLabels": {"app": "redis"}, "matchExpressions": []},
        "mergeStrategy": "Containers",
        "profileTemplate": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": []},
        "active": True,
        "duration": "10m",
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"podSelector": {}},
            "podSelector: podSelector selects no labels: put the labels under matchLabels",
        ),
        (
            {"podSelector": {"matchLabels": {}, "matchExpressions": []}},
            "podSelector: podSelector selects no labels",
        ),
        (
            {"podSelector": {"app": "redis"}},
            "podSelector: expected a label selector, got the labels {app: redis}",
        ),
        ({"podSelector": "app=redis"}, "podSelector: expected a mapping, got a string"),
        ({"containers": []}, "containers: containers is empty: list the containers to record"),
        ({"containers": ["redis", "redis"]}, 'containers: container "redis" listed more than once'),
        ({"containers": ["Redis"]}, 'containers[0]: invalid container name "Redis"'),
        ({"containers": ["a.b"]}, 'containers[0]: invalid container name "a.b"'),
        (
            {"mergeStrategy": "Pods"},
            'mergeStrategy: invalid merge strategy "Pods": use one of Containers, None',
        ),
        ({"mergeStrategy": None}, "mergeStrategy: invalid merge strategy None"),
        ({"duration": "10"}, 'duration: invalid duration "10"'),
        ({"duration": "0s"}, 'duration: duration "0s" is zero: set a positive duration'),
        ({"duration": 600}, "duration: invalid duration 600"),
        ({"active": "yes"}, "active: Input should be a valid boolean"),
        (
            {"profileTemplate": {"defaultAction": "SCMP_ACT_ALLOW"}},
            (
                "profileTemplate: defaultAction SCMP_ACT_ALLOW would allow every syscall that was"
                " not recorded"
            ),
        ),
        (
            {"profileTemplate": {"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}},
            "profileTemplate: defaultErrnoRet 1 is set, but SCMP_ACT_KILL returns no errno",
        ),
        (
            {"profileTemplate": {"defaultErrnoRet": 5000}},
            "profileTemplate: defaultErrnoRet 5000 is out of range for SCMP_ACT_ERRNO",
        ),
        (
            {"profileTemplate": {"flags": ["SECCOMP_FILTER_FLAG_LOG"]}},
            'profileTemplate.flags: unknown field "flags"',
        ),
        (
            {"profileTemplate": {"architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X86"]}},
            'profileTemplate.architectures: architecture "SCMP_ARCH_X86" listed more than once',
        ),
        (
            {"podSelectr": {}},
            'podSelectr: unknown field "podSelectr" (did you mean "podSelector"?)',
        ),
    ],
)
def test_invalid_spec_rejected(fields: dict[str, Any], expected: str) -> None:
    assert_rejected(SeccompRecordingSpec, recording_spec(**fields), expected)


def test_spec_requires_pod_selector() -> None:
    assert_rejected(SeccompRecordingSpec, {}, "podSelector: required field is missing")


# Status


def test_status_reads_every_field() -> None:
    status = SeccompRecordingStatus.model_validate(
        {
            "phase": "Recording",
            "selector": "app=redis",
            "startedAt": "2025-01-31T08:15:00Z",
            "completedAt": "2025-01-31T09:15:00+01:00",
            "containers": [
                {
                    "pod": "redis-0",
                    "podUID": POD_UID,
                    "container": "redis",
                    "node": "node-1",
                    "containerID": "containerd://4f3a",
                    "initContainer": False,
                    "state": "Recording",
                    "profile": "redis-recording-redis",
                }
            ],
            "profiles": ["redis-recording-redis"],
            "profileCount": 1,
            "observedGeneration": 2,
            "conditions": [
                {
                    "type": "Recording",
                    "status": "True",
                    "reason": "ContainersRecording",
                    "message": "1 container is being recorded",
                    "lastTransitionTime": "2025-01-31T08:15:00Z",
                    "observedGeneration": 2,
                }
            ],
        }
    )

    assert status.phase is RecordingPhase.RECORDING
    assert status.started_at == datetime(2025, 1, 31, 8, 15, tzinfo=UTC)
    assert status.completed_at == datetime(2025, 1, 31, 8, 15, tzinfo=UTC)
    assert status.containers[0].pod_uid == POD_UID
    assert status.containers[0].container_id == "containerd://4f3a"
    assert status.containers[0].state is ContainerRecordingState.RECORDING
    assert status.profile_count == 1
    assert status.conditions[0].type == RecordingConditionType.RECORDING
    assert status.conditions[0].status is ConditionStatus.TRUE


def test_status_writes_kubernetes_timestamps() -> None:
    later = datetime(2025, 1, 31, 9, 15, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    status = SeccompRecordingStatus(started_at=later, phase=RecordingPhase.PENDING)

    document = status.model_dump(mode="json", exclude_none=True)

    assert document["startedAt"] == "2025-01-31T08:15:00Z"
    assert document["phase"] == "Pending"
    assert format_timestamp(later) == "2025-01-31T08:15:00Z"


def test_status_ignores_unknown_fields() -> None:
    status = SeccompRecordingStatus.model_validate({"phase": "Completed", "written": "elsewhere"})

    assert status.phase is RecordingPhase.COMPLETED


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"phase": "Done"}, "phase: Input should be"),
        ({"startedAt": "2025-01-31T08:15:00"}, "startedAt: Input should have timezone info"),
        (
            {
                "containers": [
                    {"pod": "a", "podUID": "u1", "container": "c", "state": "Recorded"},
                    {"pod": "a", "podUID": "u1", "container": "c", "state": "Failed"},
                ]
            },
            "containers: containers are listed more than once (c of pod UID u1)",
        ),
        (
            {"containers": [{"pod": "a", "podUID": "U1", "container": "c", "state": "Recorded"}]},
            'containers[0].podUID: invalid pod UID "U1"',
        ),
        (
            {"containers": [{"pod": "a", "podUID": "u1", "container": "c"}]},
            "containers[0].state: required",
        ),
        (
            {
                "conditions": [
                    {
                        "type": "Completed",
                        "status": "True",
                        "reason": "Done",
                        "lastTransitionTime": "2025-01-31T08:15:00Z",
                    },
                    {
                        "type": "Completed",
                        "status": "False",
                        "reason": "Stopped",
                        "lastTransitionTime": "2025-01-31T08:15:00Z",
                    },
                ]
            },
            'conditions: conditions of type "Completed" listed more than once',
        ),
        (
            {
                "conditions": [
                    {
                        "type": "Completed",
                        "status": "Yes",
                        "reason": "Done",
                        "lastTransitionTime": "2025-01-31T08:15:00Z",
                    }
                ]
            },
            'conditions[0].status: invalid status "Yes": use one of True, False, Unknown',
        ),
        (
            {
                "conditions": [
                    {
                        "type": "Completed",
                        "status": "True",
                        "reason": "not camel",
                        "lastTransitionTime": "2025-01-31T08:15:00Z",
                    }
                ]
            },
            "conditions[0].reason:",
        ),
        ({"profileCount": -1}, "profileCount: Input should be greater than or equal to 0"),
    ],
)
def test_invalid_status_rejected(document: dict[str, Any], expected: str) -> None:
    assert_rejected(SeccompRecordingStatus, document, expected)


# The resource


def recording(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompRecording",
        "metadata": {"name": "redis", "namespace": "db"},
        "spec": recording_spec(),
    }
    document.update(fields)
    return document


def test_recording_resource_reads_spec_and_status() -> None:
    parsed = SeccompRecording.model_validate(
        recording(metadata={"name": "redis", "uid": "1"}, status={"phase": "Pending"})
    )

    assert parsed.metadata.name == "redis"
    assert parsed.spec.pod_selector.match_labels == {"app": "redis"}
    assert parsed.status is not None
    assert parsed.status.phase is RecordingPhase.PENDING


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            recording(metadata={"name": "r" * 64}),
            (
                f'metadata: recording name "{"r" * 64}" is 64 characters long: use at most 63,'
                " because the name is the value of the label seccomp-recorder.io/recording"
            ),
        ),
        (
            recording(kind="SeccompProfile"),
            'kind: unsupported kind "SeccompProfile": use SeccompRecording',
        ),
        (
            recording(apiVersion="seccomp-recorder.io/v1"),
            (
                'apiVersion: unsupported apiVersion "seccomp-recorder.io/v1": use'
                " seccomp-recorder.io/v1alpha1"
            ),
        ),
    ],
)
def test_invalid_recording_rejected(document: dict[str, Any], expected: str) -> None:
    assert_rejected(SeccompRecording, document, expected)


# SeccompRecordingResult


def result_spec(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "recording": "redis",
        "pod": "redis-0",
        "podUID": POD_UID,
        "container": "redis",
        "containerID": "containerd://4f3a",
        "node": "node-1",
        "sequence": 3,
    }
    document.update(fields)
    return document


def test_result_defaults() -> None:
    spec = SeccompRecordingResultSpec.model_validate(result_spec())

    assert spec.init_container is False
    assert spec.final is False
    assert spec.syscalls == {}
    assert spec.unknown_syscalls == {}
    assert spec.filter_point is None
    assert spec.runtime is None
    assert spec.no_new_privileges is None


def test_result_reads_every_field_and_sorts() -> None:
    spec = SeccompRecordingResultSpec.model_validate(
        result_spec(
            initContainer=True,
            final=True,
            syscalls={"SCMP_ARCH_X86_64": ["write", "read"], "SCMP_ARCH_X86": ["exit"]},
            unknownSyscalls={"SCMP_ARCH_X86_64": [512, 463]},
            filterPoint="runtime-calls/runc/no-new-privileges",
            runtime="runc",
            noNewPrivileges=True,
        )
    )

    assert spec.pod_uid == POD_UID
    assert spec.container_id == "containerd://4f3a"
    assert spec.init_container is True
    assert spec.final is True
    assert spec.sequence == 3
    assert spec.syscalls == {
        Architecture.X86_64: ("read", "write"),
        Architecture.X86: ("exit",),
    }
    assert spec.unknown_syscalls == {Architecture.X86_64: (463, 512)}
    assert spec.filter_point == "runtime-calls/runc/no-new-privileges"
    assert spec.runtime == "runc"
    assert spec.no_new_privileges is True


def test_result_writes_kubernetes_names() -> None:
    spec = SeccompRecordingResultSpec.model_validate(
        result_spec(syscalls={"SCMP_ARCH_X86_64": ["read"]})
    )

    document = spec.model_dump(mode="json", exclude_none=True)

    assert document["podUID"] == POD_UID
    assert document["containerID"] == "containerd://4f3a"
    assert document["syscalls"] == {"SCMP_ARCH_X86_64": ["read"]}
    assert document["initContainer"] is False


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"syscalls": {"x86_64": ["read"]}},
            'syscalls.x86_64.[key]: invalid architecture "x86_64"',
        ),
        (
            {"syscalls": {"SCMP_ARCH_X86_64": ["read", "read"]}},
            'syscalls.SCMP_ARCH_X86_64: syscall "read" listed',
        ),
        (
            {"syscalls": {"SCMP_ARCH_X86_64": [""]}},
            'syscalls.SCMP_ARCH_X86_64[0]: invalid syscall name ""',
        ),
        (
            {"unknownSyscalls": {"SCMP_ARCH_X86_64": [5, 5]}},
            "unknownSyscalls.SCMP_ARCH_X86_64: syscall numbers 5 listed",
        ),
        (
            {"unknownSyscalls": {"SCMP_ARCH_X86_64": [-1]}},
            "unknownSyscalls.SCMP_ARCH_X86_64[0]: Input should be greater",
        ),
        ({"sequence": -1}, "sequence: Input should be greater than or equal to 0"),
        ({"podUID": "Not-A-UID"}, 'podUID: invalid pod UID "Not-A-UID"'),
        ({"container": "a_b"}, 'container: invalid container name "a_b"'),
        ({"node": "Node-1"}, 'node: invalid node name "Node-1"'),
        ({"sequence": None}, "sequence: Input should be a valid integer"),
        ({"finished": True}, 'finished: unknown field "finished": remove it'),
        ({"final": "true"}, "final: Input should be a valid boolean"),
        ({"initContainer": 1}, "initContainer: Input should be a valid boolean"),
    ],
)
def test_invalid_result_rejected(fields: dict[str, Any], expected: str) -> None:
    assert_rejected(SeccompRecordingResultSpec, result_spec(**fields), expected)


def test_result_requires_identity_fields() -> None:
    messages = messages_for(SeccompRecordingResultSpec, {})

    for field in ("recording", "pod", "podUID", "container", "containerID", "node", "sequence"):
        assert f"{field}: required field is missing: add it" in messages


def test_result_resource_reads_spec() -> None:
    parsed = SeccompRecordingResult.model_validate(
        {
            "apiVersion": "seccomp-recorder.io/v1alpha1",
            "kind": "SeccompRecordingResult",
            "metadata": {"name": f"redis-{POD_UID}-redis", "namespace": "db"},
            "spec": result_spec(),
        }
    )

    assert parsed.kind == "SeccompRecordingResult"
    assert parsed.spec.recording == "redis"
