"""The operator turns SeccompRecordings and their results into SeccompProfiles.

Each test runs the operator as a process against the dev cluster's API server and plays
the node agents' part: it creates and updates SeccompRecordingResults by hand. No node
agent runs, so nothing is recorded or installed for real.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest
from operator_fixtures import (  # noqa: F401 (fixtures are found by their registered names)
    StartOperator,
    kube_fixture,
    namespace_fixture,
    start_operator_fixture,
)
from operator_helpers import (
    PROFILES,
    RECORDINGS,
    RESULTS,
    Kube,
    allowed_names,
    condition,
    recording_body,
    result_body,
    wait_for,
)

pytestmark = pytest.mark.cluster

X86_64 = "SCMP_ARCH_X86_64"
X86 = "SCMP_ARCH_X86"


def create_recording(kube: Kube, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    kube.create(RECORDINGS, recording_body(namespace, name, **spec))

    def started() -> dict[str, Any] | None:
        found = kube.get(RECORDINGS, namespace, name)
        phase = ((found or {}).get("status") or {}).get("phase")
        return found if phase in ("Recording", "Pending") else None

    recording: dict[str, Any] = wait_for(f"recording {name} to get a phase", started)
    return recording


def wait_for_profile(
    kube: Kube, namespace: str, name: str, names: set[str], description: str = ""
) -> dict[str, Any]:
    """Wait until profile `name` allows at least `names`; return it."""

    def has_names() -> dict[str, Any] | None:
        found = kube.get(PROFILES, namespace, name)
        return found if found is not None and names <= allowed_names(found) else None

    profile: dict[str, Any] = wait_for(
        description or f"profile {name} to allow {sorted(names)}", has_names
    )
    return profile


def wait_for_status(
    kube: Kube, namespace: str, name: str, test: Any, description: str
) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        found = kube.get(RECORDINGS, namespace, name)
        return found if found is not None and test(found.get("status") or {}) else None

    recording: dict[str, Any] = wait_for(description, matches)
    return recording


def test_recording_starts_with_status(kube: Kube, namespace: str, start_operator: StartOperator) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "web", duration="1h")
    status = recording["status"]
    assert status["phase"] == "Recording"
    assert status["selector"] == "app=web"
    assert status["startedAt"]
    assert status["observedGeneration"] == recording["metadata"]["generation"]
    assert condition(recording, "Recording")["status"] == "True"
    assert condition(recording, "Completed")["status"] == "False"
    assert "seccomp-recorder.io/finalizer" in recording["metadata"]["finalizers"]
    wait_for("a RecordingStarted event",
             lambda: "RecordingStarted" in kube.reasons(namespace, "SeccompRecording", "web"))


def test_inactive_recording_stays_pending(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "web", active=False)
    assert recording["status"]["phase"] == "Pending"
    assert "startedAt" not in recording["status"]

    kube.patch(RECORDINGS, namespace, "web", {"spec": {"active": True}})
    wait_for_status(kube, namespace, "web", lambda status: status.get("phase") == "Recording",
                    "the activated recording to start")


def test_replicas_merge_into_one_profile(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "web")
    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read", "write"]}))
    kube.create(RESULTS, result_body(recording, "web-2", "app", {X86_64: ["openat"], X86: ["socketcall"]}))
    kube.create(RESULTS, result_body(recording, "web-1", "sidecar", {X86_64: ["poll"]}))

    profile = wait_for_profile(kube, namespace, "web-app", {"read", "write", "openat", "socketcall"})
    assert profile["spec"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["spec"]["architectures"] == [X86, X86_64]
    assert profile["metadata"]["labels"]["seccomp-recorder.io/recording"] == "web"
    assert profile["metadata"]["labels"]["seccomp-recorder.io/container"] == "app"
    assert profile["metadata"]["annotations"]["seccomp-recorder.io/final"] == "false"
    assert "ownerReferences" not in profile["metadata"]
    wait_for_profile(kube, namespace, "web-sidecar", {"poll"})

    recording = wait_for_status(
        kube, namespace, "web",
        lambda status: status.get("profileCount") == 2 and len(status.get("containers", [])) == 3,
        "the recording status to list 2 profiles and 3 containers",
    )
    status = recording["status"]
    assert status["profiles"] == ["web-app", "web-sidecar"]
    containers = {(item["pod"], item["container"]): item for item in status["containers"]}
    assert containers[("web-2", "app")]["profile"] == "web-app"
    assert containers[("web-2", "app")]["state"] == "Recording"
    assert containers[("web-2", "app")]["podUID"] == "uid-web-2"
    wait_for("a ProfileCreated event",
             lambda: "ProfileCreated" in kube.reasons(namespace, "SeccompProfile", "web-app"))


def test_none_strategy_makes_profile_per_pod(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "web", mergeStrategy="None")
    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read"]}))
    kube.create(RESULTS, result_body(recording, "web-2", "app", {X86_64: ["write"]}))

    first = wait_for_profile(kube, namespace, "web-web-1-app", {"read"})
    second = wait_for_profile(kube, namespace, "web-web-2-app", {"write"})
    assert allowed_names(first) == {"read"}
    assert allowed_names(second) == {"write"}
    assert first["metadata"]["labels"]["seccomp-recorder.io/pod"] == "web-1"


def test_template_shapes_the_profile(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    template = {
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    }
    recording = create_recording(kube, namespace, "web", profileTemplate=template)
    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read", "clone3"]}))
    profile = wait_for_profile(kube, namespace, "web-app", {"read", "clone3"})
    assert profile["spec"]["defaultAction"] == "SCMP_ACT_KILL_PROCESS"
    assert profile["spec"]["architectures"] == template["architectures"]
    assert "defaultErrnoRet" not in profile["spec"]


def updated_at(profile: dict[str, Any]) -> datetime:
    text = profile["metadata"]["annotations"]["seccomp-recorder.io/updated-at"]
    return datetime.fromisoformat(text)


def test_profile_grows_at_bounded_rate(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    interval = 2.0
    start_operator(PROFILE_UPDATE_INTERVAL=f"{interval:g}")
    recording = create_recording(kube, namespace, "web")
    body = result_body(recording, "web-1", "app", {X86_64: ["read"]})
    kube.create(RESULTS, body)
    first = wait_for_profile(kube, namespace, "web-app", {"read"})
    name = body["metadata"]["name"]

    # Two quick snapshots: the profile takes both, in writes at least `interval` apart.
    kube.patch(RESULTS, namespace, name, {"spec": {"sequence": 2, "syscalls": {X86_64: ["read", "write"]}}})
    kube.patch(RESULTS, namespace, name, {"spec": {"sequence": 3, "syscalls": {X86_64: ["read", "write", "openat"]}}})
    grown = wait_for_profile(kube, namespace, "web-app", {"read", "write", "openat"})
    gap = (updated_at(grown) - updated_at(first)).total_seconds()
    assert gap >= interval, f"the profile was rewritten {gap} s after its creation"

    # A smaller snapshot never shrinks the profile; a later one still adds to it.
    kube.patch(RESULTS, namespace, name, {"spec": {"sequence": 4, "syscalls": {X86_64: ["close"]}}})
    latest = wait_for_profile(kube, namespace, "web-app", {"close"})
    assert allowed_names(latest) == {"read", "write", "openat", "close"}
    wait_for("a ProfileUpdated event",
             lambda: "ProfileUpdated" in kube.reasons(namespace, "SeccompProfile", "web-app"))


def test_concurrent_results_lose_no_syscalls(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator(PROFILE_UPDATE_INTERVAL="0.2")
    recording = create_recording(kube, namespace, "web")
    bodies = [
        result_body(recording, f"web-{index}", "app", {X86_64: ["read", f"syscall{index}"]})
        for index in range(8)
    ]
    # Names the syscall tables do not know are fine here: the operator merges names and
    # leaves validation to the profile's status.
    threads = [threading.Thread(target=kube.create, args=(RESULTS, body)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {"read"} | {f"syscall{index}" for index in range(8)}
    profile = wait_for_profile(kube, namespace, "web-app", expected)
    assert allowed_names(profile) == expected


def test_stopping_finalizes_profiles(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "web")
    body = result_body(recording, "web-1", "app", {X86_64: ["read"]})
    kube.create(RESULTS, body)
    wait_for_profile(kube, namespace, "web-app", {"read"})

    kube.patch(RECORDINGS, namespace, "web", {"spec": {"active": False}})
    stopped = wait_for_status(kube, namespace, "web",
                              lambda status: status.get("phase") == "Completed",
                              "the recording to complete")
    assert stopped["status"]["completedAt"]
    assert "spec.active" in condition(stopped, "Recording")["message"]
    assert condition(stopped, "Completed")["reason"] == "WaitingForFinalResults"

    # The agent sends the final snapshot once it stops recording the container.
    kube.patch(RESULTS, namespace, body["metadata"]["name"],
               {"spec": {"final": True, "sequence": 2, "syscalls": {X86_64: ["read", "exit_group"]}}})
    done = wait_for_status(
        kube, namespace, "web",
        lambda status: any(item.get("type") == "Completed" and item.get("status") == "True"
                           for item in status.get("conditions", [])),
        "the recording's profiles to be final",
    )
    assert done["status"]["containers"][0]["state"] == "Recorded"
    profile = kube.get(PROFILES, namespace, "web-app")
    assert profile is not None
    assert allowed_names(profile) == {"read", "exit_group"}
    assert profile["metadata"]["annotations"]["seccomp-recorder.io/final"] == "true"
    reasons = kube.reasons(namespace, "SeccompRecording", "web")
    assert "RecordingStopped" in reasons
    wait_for("a RecordingCompleted event",
             lambda: "RecordingCompleted" in kube.reasons(namespace, "SeccompRecording", "web"))
    wait_for("a ProfileFinal event",
             lambda: "ProfileFinal" in kube.reasons(namespace, "SeccompProfile", "web-app"))


def test_ended_containers_finalize_running_recording(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "job")
    kube.create(RESULTS, result_body(recording, "job-1", "main", {X86_64: ["read"]}, final=True))
    profile = wait_for_profile(kube, namespace, "job-main", {"read"})
    assert profile["metadata"]["annotations"]["seccomp-recorder.io/final"] == "true"
    running = kube.get(RECORDINGS, namespace, "job")
    assert running is not None
    assert running["status"]["phase"] == "Recording"


def test_duration_stops_recording(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    create_recording(kube, namespace, "web", duration="1s")
    stopped = wait_for_status(kube, namespace, "web",
                              lambda status: status.get("phase") == "Completed",
                              "the recording to stop after its duration")
    assert "duration of 1s elapsed" in condition(stopped, "Recording")["message"]
    # No container was recorded, so there is nothing to wait for.
    wait_for_status(
        kube, namespace, "web",
        lambda status: any(item.get("type") == "Completed" and item.get("status") == "True"
                           for item in status.get("conditions", [])),
        "the empty recording to complete",
    )


def test_deletion_waits_for_final_results(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "web")
    body = result_body(recording, "web-1", "app", {X86_64: ["read"]})
    kube.create(RESULTS, body)
    wait_for_profile(kube, namespace, "web-app", {"read"})

    kube.delete(RECORDINGS, namespace, "web")
    waiting = wait_for_status(kube, namespace, "web",
                              lambda status: status.get("phase") == "Completed",
                              "the deleted recording to stop")
    assert "being deleted" in condition(waiting, "Recording")["message"]
    assert kube.get(RECORDINGS, namespace, "web") is not None

    kube.patch(RESULTS, namespace, body["metadata"]["name"],
               {"spec": {"final": True, "sequence": 2, "syscalls": {X86_64: ["read", "write"]}}})
    wait_for("the recording to be gone", lambda: kube.get(RECORDINGS, namespace, "web") is None)
    profile = kube.get(PROFILES, namespace, "web-app")
    assert profile is not None, "the profile must outlive its recording"
    assert allowed_names(profile) == {"read", "write"}
    assert profile["metadata"]["annotations"]["seccomp-recorder.io/final"] == "true"


def test_deleted_final_profile_stays_deleted(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "web")
    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read"]}, final=True))
    wait_for_profile(kube, namespace, "web-app", {"read"})
    kube.patch(RECORDINGS, namespace, "web", {"spec": {"active": False}})
    wait_for_status(
        kube, namespace, "web",
        lambda status: any(item.get("type") == "Completed" and item.get("status") == "True"
                           for item in status.get("conditions", [])),
        "the recording to complete",
    )

    kube.delete(PROFILES, namespace, "web-app")
    wait_for("the profile to be gone", lambda: kube.get(PROFILES, namespace, "web-app") is None)
    kube.delete(RECORDINGS, namespace, "web")
    wait_for("the recording to be gone", lambda: kube.get(RECORDINGS, namespace, "web") is None)

    assert kube.get(PROFILES, namespace, "web-app") is None


def test_deletion_wait_is_bounded(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator(FINAL_RESULT_TIMEOUT="2")
    recording = create_recording(kube, namespace, "web")
    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read"]}))
    wait_for_profile(kube, namespace, "web-app", {"read"})

    kube.delete(RECORDINGS, namespace, "web")
    wait_for("the recording to be gone without a final result",
             lambda: kube.get(RECORDINGS, namespace, "web") is None)
    profile = kube.get(PROFILES, namespace, "web-app")
    assert profile is not None
    assert profile["metadata"]["annotations"]["seccomp-recorder.io/final"] == "true"


def test_foreign_profile_name_fails_recording(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    foreign = {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": "web-app", "namespace": namespace},
        "spec": {"defaultAction": "SCMP_ACT_LOG"},
    }
    kube.create(PROFILES, foreign)
    recording = create_recording(kube, namespace, "web")
    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read"]}))

    failed = wait_for_status(kube, namespace, "web",
                             lambda status: status.get("phase") == "Failed",
                             "the recording to fail")
    message = condition(failed, "Recording")["message"]
    assert "web-app" in message
    assert "no recording label" in message
    profile = kube.get(PROFILES, namespace, "web-app")
    assert profile is not None
    assert profile["spec"] == {"defaultAction": "SCMP_ACT_LOG"}
    reasons = kube.reasons(namespace, "SeccompRecording", "web")
    assert "ProfileNameConflict" in reasons
    assert "RecordingFailed" in reasons


def test_unbuildable_template_fails_recording(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    # ENOSYS is 89 on MIPS and 38 elsewhere, so one profile cannot deny clone3 on both.
    template = {"architectures": ["SCMP_ARCH_MIPS", "SCMP_ARCH_X86_64"]}
    recording = create_recording(kube, namespace, "web", profileTemplate=template)
    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read"]}))
    failed = wait_for_status(kube, namespace, "web",
                             lambda status: status.get("phase") == "Failed",
                             "the recording to fail")
    assert "ENOSYS" in condition(failed, "Completed")["message"]
    assert kube.get(PROFILES, namespace, "web-app") is None


def test_unknown_syscalls_are_reported(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    start_operator()
    recording = create_recording(kube, namespace, "web")
    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read"]},
                                     unknown={X86_64: [470]}))
    profile = wait_for_profile(kube, namespace, "web-app", {"read"})
    assert profile["metadata"]["annotations"]["seccomp-recorder.io/unknown-syscalls"] == (
        "SCMP_ARCH_X86_64=470"
    )
    wait_for("an UnknownSyscalls event",
             lambda: "UnknownSyscalls" in kube.reasons(namespace, "SeccompRecording", "web"))


def test_operator_restart_resumes_recording(
    kube: Kube, namespace: str, start_operator: StartOperator
) -> None:
    first = start_operator()
    recording = create_recording(kube, namespace, "web")
    started_at = recording["status"]["startedAt"]
    assert first.stop() == 0

    kube.create(RESULTS, result_body(recording, "web-1", "app", {X86_64: ["read"]}))
    start_operator()
    wait_for_profile(kube, namespace, "web-app", {"read"})
    resumed = kube.get(RECORDINGS, namespace, "web")
    assert resumed is not None
    assert resumed["status"]["startedAt"] == started_at
