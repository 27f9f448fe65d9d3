"""The recording life cycle and the status summary after a pass over its results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from seccomp_recorder.models.meta import ConditionStatus
from seccomp_recorder.models.recording import (
    ContainerRecordingState,
    RecordingAgent,
    RecordingPhase,
    SeccompRecordingSpec,
    SeccompRecordingStatus,
)
from seccomp_recorder.models.result import SeccompRecordingResultSpec
from seccomp_recorder.operator.conditions import find_condition, set_condition
from seccomp_recorder.operator.events import Reason
from seccomp_recorder.operator.merging import ProfilePlan, RecordedResult
from seccomp_recorder.operator.recording_state import (
    SyncSummary,
    is_done,
    recorded_containers,
    status_changes,
    status_document,
    summarize,
    transition,
)

NOW = datetime(2026, 1, 31, 8, 0, 0, tzinfo=UTC)


def spec(**fields: Any) -> SeccompRecordingSpec:
    document: dict[str, Any] = {"podSelector": {"matchLabels": {"app": "web"}}}
    document.update(fields)
    return SeccompRecordingSpec.model_validate(document)


def recording_status(**fields: Any) -> SeccompRecordingStatus:
    return SeccompRecordingStatus.model_validate(fields)


def condition(status: SeccompRecordingStatus, condition_type: str) -> Any:
    found = find_condition(status.conditions, condition_type)
    assert found is not None, f"no condition {condition_type} in {status.conditions}"
    return found


def started(at: datetime = NOW - timedelta(minutes=1)) -> SeccompRecordingStatus:
    return transition(spec(), SeccompRecordingStatus(), generation=1, deleting=False, now=at).status


def test_active_recording_starts() -> None:
    step = transition(spec(), SeccompRecordingStatus(), generation=1, deleting=False, now=NOW)
    assert step.status.phase is RecordingPhase.RECORDING
    assert step.status.started_at == NOW
    assert step.status.selector == "app=web"
    assert step.status.observed_generation == 1
    assert condition(step.status, "Recording").status is ConditionStatus.TRUE
    assert condition(step.status, "Completed").status is ConditionStatus.FALSE
    assert [event.reason for event in step.events] == [Reason.RECORDING_STARTED]


def test_inactive_recording_stays_pending() -> None:
    step = transition(
        spec(active=False), SeccompRecordingStatus(), generation=1, deleting=False, now=NOW
    )
    assert step.status.phase is RecordingPhase.PENDING
    assert step.status.started_at is None
    assert condition(step.status, "Recording").reason == "NotActive"
    assert step.events == ()


def test_pending_recording_starts_when_activated() -> None:
    pending = transition(
        spec(active=False), SeccompRecordingStatus(), generation=1, deleting=False, now=NOW
    ).status
    later = NOW + timedelta(seconds=5)
    step = transition(spec(), pending, generation=2, deleting=False, now=later)
    assert step.status.phase is RecordingPhase.RECORDING
    assert step.status.started_at == later
    assert condition(step.status, "Recording").last_transition_time == later


def test_running_recording_goes_on() -> None:
    running = started()
    step = transition(spec(), running, generation=1, deleting=False, now=NOW)
    assert step.status == running
    assert step.events == ()


def test_deactivated_recording_completes() -> None:
    step = transition(spec(active=False), started(), generation=2, deleting=False, now=NOW)
    assert step.status.phase is RecordingPhase.COMPLETED
    assert step.status.completed_at == NOW
    recording = condition(step.status, "Recording")
    assert recording.status is ConditionStatus.FALSE
    assert "spec.active" in recording.message
    assert condition(step.status, "Completed").reason == "WaitingForFinalResults"
    assert [event.reason for event in step.events] == [Reason.RECORDING_STOPPED]


def test_elapsed_duration_completes() -> None:
    running = started(NOW - timedelta(seconds=91))
    step = transition(spec(duration="90s"), running, generation=1, deleting=False, now=NOW)
    assert step.status.phase is RecordingPhase.COMPLETED
    assert "90s" in condition(step.status, "Recording").message


def test_duration_not_elapsed_goes_on() -> None:
    running = started(NOW - timedelta(seconds=89))
    step = transition(spec(duration="90s"), running, generation=1, deleting=False, now=NOW)
    assert step.status.phase is RecordingPhase.RECORDING


def test_deleted_recording_completes() -> None:
    step = transition(spec(), started(), generation=1, deleting=True, now=NOW)
    assert step.status.phase is RecordingPhase.COMPLETED
    assert "deleted" in condition(step.status, "Recording").message


def test_completed_recording_never_restarts() -> None:
    completed = transition(spec(active=False), started(), generation=2, deleting=False, now=NOW)
    step = transition(
        spec(), completed.status, generation=3, deleting=False, now=NOW + timedelta(minutes=1)
    )
    assert step.status.phase is RecordingPhase.COMPLETED
    assert step.status.completed_at == NOW
    assert step.events == ()


def result(pod: str, *, final: bool) -> RecordedResult:
    spec = SeccompRecordingResultSpec.model_validate(
        {
            "recording": "rec", "pod": pod, "podUID": f"uid-{pod}", "container": "app",
            "containerID": "runc://1", "node": "node-a", "final": final, "sequence": 3,
            "syscalls": {"SCMP_ARCH_X86_64": ["read"]},
        }
    )
    return RecordedResult(name=f"rec-uid-{pod}-app", spec=spec)


def test_containers_show_recording_state() -> None:
    plan = ProfilePlan(
        name="rec-app", labels={},
        results=(result("web-2", final=False), result("web-1", final=True)),
    )
    containers = recorded_containers([plan], written=["rec-app"], timed_out=False)
    assert [(item.pod, item.state) for item in containers] == [
        ("web-1", ContainerRecordingState.RECORDED),
        ("web-2", ContainerRecordingState.RECORDING),
    ]
    assert containers[0].profile == "rec-app"
    assert containers[0].node == "node-a"


def test_containers_without_final_result_fail_after_timeout() -> None:
    plan = ProfilePlan(name="rec-app", labels={}, results=(result("web-1", final=False),))
    containers = recorded_containers([plan], written=[], timed_out=True)
    assert containers[0].state is ContainerRecordingState.FAILED
    assert containers[0].profile is None


def stopped() -> SeccompRecordingStatus:
    return transition(spec(active=False), started(), generation=2, deleting=False, now=NOW).status


def test_summary_lists_profiles() -> None:
    summary = SyncSummary(containers=(), profiles=("rec-b", "rec-a"), all_final=False)
    step = summarize(started(), summary, generation=1, now=NOW)
    assert step.status.profiles == ("rec-a", "rec-b")
    assert step.status.profile_count == 2
    assert step.status.phase is RecordingPhase.RECORDING
    assert step.events == ()


def test_stopped_recording_with_final_profiles_completes() -> None:
    summary = SyncSummary(containers=(), profiles=("rec-app",), all_final=True)
    step = summarize(stopped(), summary, generation=2, now=NOW)
    completed = condition(step.status, "Completed")
    assert completed.status is ConditionStatus.TRUE
    assert completed.reason == "ProfilesFinal"
    assert [event.reason for event in step.events] == [Reason.RECORDING_COMPLETED]
    assert is_done(step.status)


def test_completion_is_announced_once() -> None:
    summary = SyncSummary(containers=(), profiles=("rec-app",), all_final=True)
    done = summarize(stopped(), summary, generation=2, now=NOW).status
    again = summarize(done, summary, generation=2, now=NOW + timedelta(seconds=1))
    assert again.events == ()
    assert again.status == done


def test_running_recording_with_final_profiles_is_not_done() -> None:
    summary = SyncSummary(containers=(), profiles=("rec-app",), all_final=True)
    step = summarize(started(), summary, generation=1, now=NOW)
    assert condition(step.status, "Completed").status is ConditionStatus.FALSE
    assert not is_done(step.status)


def test_problems_fail_the_recording() -> None:
    summary = SyncSummary(
        containers=(), profiles=(), all_final=False, problems=("profile 'x' taken",)
    )
    step = summarize(started(), summary, generation=1, now=NOW)
    assert step.status.phase is RecordingPhase.FAILED
    assert step.status.completed_at == NOW
    assert condition(step.status, "Recording").message == "profile 'x' taken"
    assert condition(step.status, "Completed").reason == "Failed"
    assert [event.reason for event in step.events] == [Reason.RECORDING_FAILED]
    assert step.events[0].warning
    assert is_done(step.status)


def test_status_changes_are_a_merge_patch() -> None:
    old = status_document(started())
    new = status_document(stopped())
    patch = status_changes(old, new)
    assert patch["phase"] == "Completed"
    assert "selector" not in patch
    assert status_changes(new, new) == {}
    assert status_changes({"stale": 1}, {}) == {"stale": None}


def test_condition_keeps_transition_time_while_unchanged() -> None:
    first = set_condition((), "Valid", ConditionStatus.TRUE, "Valid", "a", now=NOW, generation=1)
    later = NOW + timedelta(minutes=1)
    same = set_condition(first, "Valid", ConditionStatus.TRUE, "Valid", "b", now=later, generation=2)
    assert same[0].last_transition_time == NOW
    assert same[0].message == "b"
    flipped = set_condition(
        same, "Valid", ConditionStatus.FALSE, "Invalid", "c", now=later, generation=2
    )
    assert flipped[0].last_transition_time == later
    assert len(flipped) == 1


def test_condition_message_is_cut_to_api_limit() -> None:
    conditions = set_condition(
        (), "Valid", ConditionStatus.FALSE, "Invalid", "x" * 40000, now=NOW, generation=1
    )
    assert len(conditions[0].message) == 32768
    assert conditions[0].message.endswith("...")


def test_agents_attached_waits_for_every_node() -> None:
    status = started().model_copy(
        update={"agents": {"node-1": RecordingAgent(attached=True, since=NOW)}}
    )
    summary = SyncSummary(
        containers=(), profiles=(), all_final=False, targeted=frozenset({"node-1", "node-2"})
    )

    waiting = condition(summarize(status, summary, generation=1, now=NOW).status, "AgentsAttached")
    everyone = SyncSummary(containers=(), profiles=(), all_final=False, targeted=frozenset({"node-1"}))
    attached = condition(summarize(status, everyone, generation=1, now=NOW).status, "AgentsAttached")

    assert waiting.status is ConditionStatus.FALSE
    assert "node-2" in waiting.message
    assert attached.status is ConditionStatus.TRUE


def test_agents_attached_unknown_without_nodes() -> None:
    summary = SyncSummary(containers=(), profiles=(), all_final=False)
    step = summarize(started(), summary, generation=1, now=NOW)
    assert condition(step.status, "AgentsAttached").status is ConditionStatus.UNKNOWN


def test_agents_attached_is_announced_once() -> None:
    status = started().model_copy(
        update={"agents": {"node-1": RecordingAgent(attached=True, since=NOW)}}
    )
    summary = SyncSummary(containers=(), profiles=(), all_final=False, targeted=frozenset({"node-1"}))

    first = summarize(status, summary, generation=1, now=NOW)
    again = summarize(first.status, summary, generation=1, now=NOW)

    assert [event.reason for event in first.events] == [Reason.AGENTS_ATTACHED]
    assert not first.events[0].warning
    assert again.events == ()
