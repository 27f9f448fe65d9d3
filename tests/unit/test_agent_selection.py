"""The agent's pure recording logic: container ids, recording state, selection, results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from seccomp_recorder.agent.containers import (
    container_id_in,
    index_containers,
    pod_containers,
    pod_uid_in,
    split_container_id,
)
from seccomp_recorder.agent.selection import is_active, parse_recordings, result_body, selects
from seccomp_recorder.models.profile import Architecture
from seccomp_recorder.models.recording import SeccompRecordingSpec
from seccomp_recorder.models.result import SeccompRecordingResult
from seccomp_recorder.recorder.analysis import FilterPoint, NamespaceSummary, RecordedSyscalls
from seccomp_recorder.recorder.runtimes import Runtime

ID_A = "a" * 64
ID_B = "b" * 64
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": "web-1", "uid": "uid-1", "labels": {"app": "web"}},
        "status": status,
    }


def recording_object(**overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "namespace": "shop",
            "name": "web",
            "uid": "rec-uid",
            "creationTimestamp": "2026-12-04T11:59:00Z",
        },
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}},
        "status": {"phase": "Recording", "startedAt": "2026-12-04T11:59:00Z"},
    }
    for key, value in overrides.items():
        obj[key] = {**obj[key], **value}
    return obj


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"0::/kubepods/pod1/{ID_A}", ID_A),
        (f"/kubepods.slice/cri-containerd-{ID_A}.scope", ID_A),
        (f"/{ID_B}/nested/{ID_A}", ID_A),
        ("/user.slice/session-1.scope", None),
        ("a" * 65, None),
    ],
)
def test_container_id_in_cgroup_paths(text: str, expected: str | None) -> None:
    assert container_id_in(text) == expected


def test_split_container_id_rejects_short_ids() -> None:
    assert split_container_id(f"containerd://{ID_A}") == ID_A
    assert split_container_id("containerd://abc") is None


def test_pod_containers_include_init_and_previous() -> None:
    status = {
        "initContainerStatuses": [
            {"name": "setup", "containerID": f"runc://{ID_B}", "state": {"terminated": {}}}
        ],
        "containerStatuses": [
            {
                "name": "main",
                "containerID": f"runc://{ID_A}",
                "state": {"running": {}},
                "lastState": {"terminated": {"containerID": f"runc://{'c' * 64}"}},
            }
        ],
    }
    found = {c.container_id: c for c in pod_containers(pod(**status))}

    assert found[ID_B].init_container
    assert not found[ID_B].running
    assert found[ID_A].running
    assert not found["c" * 64].running
    assert found["c" * 64].container == "main"


def test_index_skips_containers_without_id() -> None:
    status = {"containerStatuses": [{"name": "main", "state": {"waiting": {}}}]}
    assert index_containers([pod(**status)]) == {}


def spec(**fields: Any) -> SeccompRecordingSpec:
    return SeccompRecordingSpec.model_validate({"podSelector": {"matchLabels": {"app": "web"}}, **fields})


def test_recording_active_by_default() -> None:
    assert is_active(recording_object(), spec(), NOW)


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"metadata": {"deletionTimestamp": "2026-12-04T12:00:00Z"}}, {}),
        ({}, {"active": False}),
        ({"status": {"phase": "Completed"}}, {}),
        ({"status": {"phase": "Failed"}}, {}),
        ({}, {"duration": "30s"}),
    ],
    ids=["deleting", "inactive", "completed", "failed", "duration over"],
)
def test_recording_stopped(overrides: dict[str, Any], fields: dict[str, Any]) -> None:
    assert not is_active(recording_object(**overrides), spec(**fields), NOW)


def test_duration_counts_from_start() -> None:
    started = (NOW - timedelta(seconds=10)).isoformat()
    obj = recording_object(status={"startedAt": started})
    assert is_active(obj, spec(duration="1m"), NOW)


def test_invalid_recordings_are_skipped() -> None:
    bad = recording_object(spec={"podSelector": "app=web"})
    assert parse_recordings([bad, recording_object()], NOW)[0].name == "web"
    assert len(parse_recordings([bad], NOW)) == 0


def test_selection_by_namespace_labels_and_container() -> None:
    status = {"containerStatuses": [{"name": "main", "containerID": f"runc://{ID_A}"}]}
    container = next(iter(pod_containers(pod(**status))))
    (everything,) = parse_recordings([recording_object()], NOW)
    (only_sidecar,) = parse_recordings([recording_object(spec={"containers": ["sidecar"]})], NOW)
    (elsewhere,) = parse_recordings([recording_object(metadata={"namespace": "other"})], NOW)

    assert selects(everything, container)
    assert not selects(only_sidecar, container)
    assert not selects(elsewhere, container)


def test_result_body_is_a_valid_result() -> None:
    status = {"containerStatuses": [{"name": "main", "containerID": f"crun://{ID_A}"}]}
    container = next(iter(pod_containers(pod(**status))))
    (recording,) = parse_recordings([recording_object()], NOW)
    recorded = RecordedSyscalls(
        names={Architecture.X86_64: {"read", "write"}},
        unknown_numbers={Architecture.X86_64: {1000}},
        sources=[NamespaceSummary(1, FilterPoint.SECCOMP_FILTER, Runtime.CRUN, True)],
    )

    body = result_body(
        recording, container, runtime_prefix="crun", node="node-1",
        recorded=recorded, sequence=3, final=True,
    )
    result = SeccompRecordingResult.model_validate(body)

    assert result.spec.syscalls[Architecture.X86_64] == ("read", "write")
    assert result.spec.container_id == f"crun://{ID_A}"
    assert result.spec.filter_point == "seccomp-filter/crun/no-new-privileges"
    assert result.spec.final
    assert result.metadata.labels["seccomp-recorder.io/recording"] == "web"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            f"/seccomp-devcluster/node-1/pod0c1e0a20-72f5-44be-adef-18ab31485a6a/{ID_A}",
            "0c1e0a20-72f5-44be-adef-18ab31485a6a",
        ),
        (
            (
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
                f"0c1e0a20_72f5_44be_adef_18ab31485a6a.slice/cri-containerd-{ID_A}.scope"
            ),
            "0c1e0a20-72f5-44be-adef-18ab31485a6a",
        ),
        (f"/{ID_A}", None),
    ],
    ids=["cgroupfs", "systemd", "no pod"],
)
def test_pod_uid_in_cgroup_paths(path: str, expected: str | None) -> None:
    assert pod_uid_in(path) == expected
