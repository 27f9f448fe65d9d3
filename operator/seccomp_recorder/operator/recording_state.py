"""The life cycle of a SeccompRecording as pure status transitions.

A recording is Pending until `spec.active` is true, then Recording until it stops: when
`spec.active` turns false, when `spec.duration` has elapsed since `startedAt`, or when
it is deleted. Then it is Completed (with `completedAt`), and its condition Completed
turns true once every profile is final. It is Failed when its results cannot be turned
into profiles. Completed and Failed are final phases: the node agents record a
recording only while its phase is Recording, and a completed recording never restarts.

`transition` computes the life-cycle step, `summarize` the parts of the status that
come from the results and profiles. Both return the new status and the Events to post.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from seccomp_recorder.models.meta import ConditionStatus
from seccomp_recorder.models.recording import (
    ContainerRecordingState,
    RecordedContainer,
    RecordingConditionType,
    RecordingPhase,
    SeccompRecordingSpec,
    SeccompRecordingStatus,
)
from seccomp_recorder.models.selectors import format_selector
from seccomp_recorder.operator.conditions import condition_is, find_condition, set_condition
from seccomp_recorder.operator.events import EventToPost, Reason
from seccomp_recorder.operator.merging import ProfilePlan

FINAL_PHASES = frozenset({RecordingPhase.COMPLETED, RecordingPhase.FAILED})


class ConditionReason(StrEnum):
    """Reasons of the recording's conditions, in CamelCase as metav1.Condition requires."""

    STARTED = "Started"
    NOT_ACTIVE = "NotActive"
    STOPPED = "Stopped"
    FAILED = "Failed"
    RECORDING = "Recording"
    WAITING_FOR_FINAL_RESULTS = "WaitingForFinalResults"
    PROFILES_FINAL = "ProfilesFinal"
    NO_NODES = "NoNodes"
    WAITING_FOR_AGENTS = "WaitingForAgents"
    ATTACHED = "Attached"


@dataclass(frozen=True)
class Transition:
    """A new status and the Events that announce the change."""

    status: SeccompRecordingStatus
    events: tuple[EventToPost, ...] = ()


def duration_deadline(
    spec: SeccompRecordingSpec, status: SeccompRecordingStatus
) -> datetime | None:
    """Return when the recording's duration ends, or None without a duration or start."""
    seconds = spec.duration_seconds()
    if seconds is None or status.started_at is None:
        return None
    return status.started_at + timedelta(seconds=seconds)


def stop_cause(
    spec: SeccompRecordingSpec, status: SeccompRecordingStatus, *, deleting: bool, now: datetime
) -> str | None:
    """Return why a running recording must stop now, or None when it goes on."""
    if deleting:
        return "the recording is being deleted"
    if not spec.active:
        return "spec.active was set to false"
    deadline = duration_deadline(spec, status)
    if deadline is not None and now >= deadline:
        return f"its duration of {spec.duration} elapsed"
    return None


def transition(
    spec: SeccompRecordingSpec,
    status: SeccompRecordingStatus,
    *,
    generation: int | None,
    deleting: bool,
    now: datetime,
) -> Transition:
    """Take the life-cycle step that `spec`, deletion and the time call for.

    Starts a new or pending recording when it is active, stops a running one that must
    stop, and leaves Completed and Failed recordings as they are.
    """
    selector = format_selector(spec.pod_selector)
    status = status.model_copy(update={"selector": selector, "observed_generation": generation})
    if status.phase in FINAL_PHASES:
        return Transition(status)
    conditions = _Conditions(status, now=now, generation=generation)

    if status.phase in (None, RecordingPhase.PENDING):
        if deleting or not spec.active:
            conditions.set(
                RecordingConditionType.RECORDING, ConditionStatus.FALSE,
                ConditionReason.NOT_ACTIVE, "spec.active is false: set it to true to start recording",
            )
            return Transition(conditions.apply(phase=RecordingPhase.PENDING))
        conditions.set(
            RecordingConditionType.RECORDING, ConditionStatus.TRUE, ConditionReason.STARTED,
            f"recording the containers of pods matching {selector}",
        )
        conditions.set(
            RecordingConditionType.COMPLETED, ConditionStatus.FALSE, ConditionReason.RECORDING,
            "the recording has not stopped yet",
        )
        message = f"started recording the containers of pods matching {selector}"
        if spec.duration is not None:
            message += f" for {spec.duration}"
        return Transition(
            conditions.apply(phase=RecordingPhase.RECORDING, started_at=now),
            (EventToPost(Reason.RECORDING_STARTED, message),),
        )

    cause = stop_cause(spec, status, deleting=deleting, now=now)
    if cause is None:
        return Transition(status)
    conditions.set(
        RecordingConditionType.RECORDING, ConditionStatus.FALSE, ConditionReason.STOPPED,
        f"stopped because {cause}",
    )
    conditions.set(
        RecordingConditionType.COMPLETED, ConditionStatus.FALSE,
        ConditionReason.WAITING_FOR_FINAL_RESULTS,
        "waiting for the node agents' final results before the profiles are final",
    )
    return Transition(
        conditions.apply(phase=RecordingPhase.COMPLETED, completed_at=now),
        (EventToPost(Reason.RECORDING_STOPPED, f"stopped recording because {cause}"),),
    )


class _Conditions:
    """Collects condition changes to a recording's status, then applies them with others."""

    def __init__(
        self, status: SeccompRecordingStatus, *, now: datetime, generation: int | None
    ) -> None:
        self._status = status
        self._conditions = status.conditions
        self._now = now
        self._generation = generation

    def set(
        self,
        condition_type: RecordingConditionType,
        value: ConditionStatus,
        reason: ConditionReason,
        message: str,
    ) -> None:
        self._conditions = set_condition(
            self._conditions, condition_type, value, reason, message,
            now=self._now, generation=self._generation,
        )

    def apply(self, **changes: object) -> SeccompRecordingStatus:
        """Return the status with the collected conditions and `changes` (field: value)."""
        return self._status.model_copy(update={**changes, "conditions": self._conditions})


def recorded_containers(
    plans: Iterable[ProfilePlan],
    *,
    written: Iterable[str],
    timed_out: bool,
) -> tuple[RecordedContainer, ...]:
    """List the containers that the plans' results recorded, for the recording's status.

    A container is Recorded once its result is final, Failed when the agents' time for
    final results ran out without one, and Recording before. Its profile is named only
    once that profile exists.
    """
    existing = set(written)
    containers = []
    for plan in plans:
        for result in plan.results:
            spec = result.spec
            if spec.final:
                state = ContainerRecordingState.RECORDED
            elif timed_out:
                state = ContainerRecordingState.FAILED
            else:
                state = ContainerRecordingState.RECORDING
            containers.append(
                RecordedContainer(
                    pod=spec.pod,
                    pod_uid=spec.pod_uid,
                    container=spec.container,
                    node=spec.node,
                    container_id=spec.container_id,
                    init_container=spec.init_container,
                    state=state,
                    profile=plan.name if plan.name in existing else None,
                )
            )
    return tuple(sorted(containers, key=lambda container: (container.pod, container.container)))


@dataclass(frozen=True)
class SyncSummary:
    """The findings and writes of one pass over a recording's results."""

    containers: tuple[RecordedContainer, ...]
    # Names of the recording's profiles that exist.
    profiles: tuple[str, ...]
    # Whether every profile of the recording exists and is final.
    all_final: bool
    problems: tuple[str, ...] = ()
    # Nodes whose agent must attach its recorder: Ready nodes that the agent runs on.
    targeted: frozenset[str] = frozenset()


def summarize(
    status: SeccompRecordingStatus,
    summary: SyncSummary,
    *,
    generation: int | None,
    now: datetime,
) -> Transition:
    """Put the containers and profiles of `summary` into the status, and mark the outcome.

    Problems fail the recording. A stopped recording whose profiles are all final gets
    its condition Completed set to true.
    """
    status = status.model_copy(
        update={
            "containers": summary.containers,
            "profiles": tuple(sorted(summary.profiles)),
            "profile_count": len(summary.profiles),
        }
    )
    conditions = _Conditions(status, now=now, generation=generation)
    if summary.problems and status.phase is not RecordingPhase.FAILED:
        message = "; ".join(summary.problems)
        conditions.set(
            RecordingConditionType.RECORDING, ConditionStatus.FALSE, ConditionReason.FAILED, message
        )
        conditions.set(
            RecordingConditionType.COMPLETED, ConditionStatus.FALSE, ConditionReason.FAILED, message
        )
        failed = conditions.apply(
            phase=RecordingPhase.FAILED, completed_at=status.completed_at or now
        )
        return Transition(failed, (EventToPost(Reason.RECORDING_FAILED, message, warning=True),))

    announcements: list[EventToPost] = []
    if status.phase is RecordingPhase.RECORDING:
        was_attached = condition_is(
            status.conditions, RecordingConditionType.AGENTS_ATTACHED, ConditionStatus.TRUE
        )
        _report_agents(conditions, status, summary.targeted)
        status = conditions.apply()
        conditions = _Conditions(status, now=now, generation=generation)
        attached = find_condition(status.conditions, RecordingConditionType.AGENTS_ATTACHED)
        if not was_attached and attached is not None and attached.status is ConditionStatus.TRUE:
            announcements.append(EventToPost(Reason.AGENTS_ATTACHED, attached.message))

    completed = (
        status.phase is RecordingPhase.COMPLETED
        and summary.all_final
        and not condition_is(
            status.conditions, RecordingConditionType.COMPLETED, ConditionStatus.TRUE
        )
    )
    if not completed:
        return Transition(status, tuple(announcements))
    count = len(summary.profiles)
    message = f"{count} profile{'' if count == 1 else 's'} final: {', '.join(summary.profiles)}"
    if not summary.profiles:
        message = "no container was recorded, so no profile was made"
    conditions.set(
        RecordingConditionType.COMPLETED, ConditionStatus.TRUE, ConditionReason.PROFILES_FINAL,
        message,
    )
    announcements.append(EventToPost(Reason.RECORDING_COMPLETED, message))
    return Transition(conditions.apply(), tuple(announcements))


def _report_agents(
    conditions: _Conditions, status: SeccompRecordingStatus, targeted: frozenset[str]
) -> None:
    """Set AgentsAttached from the agents' entries and the nodes they must run on."""
    attached = {node for node, agent in status.agents.items() if agent.attached}
    missing = sorted(targeted - attached)
    if not targeted:
        conditions.set(
            RecordingConditionType.AGENTS_ATTACHED, ConditionStatus.UNKNOWN,
            ConditionReason.NO_NODES, "no Ready node runs the agent",
        )
    elif missing:
        conditions.set(
            RecordingConditionType.AGENTS_ATTACHED, ConditionStatus.FALSE,
            ConditionReason.WAITING_FOR_AGENTS,
            f"waiting for the agents on {', '.join(missing)} to attach their recorders",
        )
    else:
        conditions.set(
            RecordingConditionType.AGENTS_ATTACHED, ConditionStatus.TRUE,
            ConditionReason.ATTACHED,
            f"the recorders of all {len(targeted)} nodes are attached",
        )


def is_done(status: SeccompRecordingStatus) -> bool:
    """Return whether nothing is left to do: failed, or completed with every profile final."""
    if status.phase is RecordingPhase.FAILED:
        return True
    return status.phase is RecordingPhase.COMPLETED and condition_is(
        status.conditions, RecordingConditionType.COMPLETED, ConditionStatus.TRUE
    )


def status_document(status: SeccompRecordingStatus) -> dict[str, object]:
    """Render `status` as the JSON object for a merge patch of the status subresource."""
    document: dict[str, object] = status.model_dump(mode="json", exclude_none=True)
    return document


def status_changes(
    old: Mapping[str, object], new: Mapping[str, object]
) -> dict[str, object]:
    """Return the merge patch that turns status `old` into `new`; fields gone become None."""
    patch: dict[str, object] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch
