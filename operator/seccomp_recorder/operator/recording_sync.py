"""Keeping a SeccompRecording, its status and its SeccompProfiles true to the agents' results.

The kopf handlers call these functions. They read the objects, take their decisions from
the pure modules (`recording_state`, `merging`), and write with resourceVersion
preconditions, reading again on 409 Conflict. So two passes over one recording, or an
agent and the operator writing at the same time, never lose a change.

- `apply_lifecycle`: start, stop or leave a recording (create, resume, spec changes,
  duration timer, deletion).
- `sync_recording`: one pass that turns the results into profiles and updates the
  recording's status; returns when the next pass is due.
- `deletion_wait`: how long a deleted recording still waits for final results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from seccomp_recorder.models.errors import ProfileError, describe_validation_error
from seccomp_recorder.models.formats import kubernetes_document
from seccomp_recorder.models.names import RECORDING_LABEL, label_value
from seccomp_recorder.models.profile import ObjectMeta, SeccompProfile, SeccompProfileSpec
from seccomp_recorder.models.recording import (
    ContainerRecordingState,
    ProfileTemplate,
    RecordingPhase,
    SeccompRecordingSpec,
    SeccompRecordingStatus,
)
from seccomp_recorder.models.result import SeccompRecordingResultSpec
from seccomp_recorder.models.selectors import format_selector
from seccomp_recorder.operator import events
from seccomp_recorder.operator.events import EventToPost, Reason
from seccomp_recorder.operator.kube import (
    API_VERSION,
    CONFLICT_ATTEMPTS,
    HTTP_CONFLICT,
    HTTP_INVALID,
    PROFILES,
    RECORDING_RESULTS,
    RECORDINGS,
    ApiClients,
    ConflictError,
    KubeObject,
    create_custom,
    describe_error,
    get_custom,
    is_status,
    list_custom,
    read_json,
    replace_custom,
    update_status,
)
from seccomp_recorder.operator.merging import (
    ExistingProfile,
    ProfilePlan,
    RecordedResult,
    WriteDecision,
    WriteKind,
    decide_write,
    describe_names,
    format_unknown_syscalls,
    is_final,
    plan_profiles,
)
from seccomp_recorder.operator.metrics import PROFILE_WRITES
from seccomp_recorder.operator.recording_state import (
    SyncSummary,
    Transition,
    is_done,
    recorded_containers,
    status_changes,
    status_document,
    summarize,
    transition,
)
from seccomp_recorder.operator.settings import OperatorSettings

# Seconds between two checks of a deleted recording's results while it waits for them.
DELETION_POLL_INTERVAL = 2.0


@dataclass(frozen=True)
class RecordingView:
    """A SeccompRecording as read from the API, parsed."""

    body: KubeObject
    namespace: str
    name: str
    uid: str | None
    generation: int | None
    deleting: bool
    # None when the spec is invalid, and then `spec_error` gives the reason.
    spec: SeccompRecordingSpec | None
    spec_error: str | None
    status: SeccompRecordingStatus

    @classmethod
    def from_body(cls, body: KubeObject) -> RecordingView:
        metadata = body.get("metadata") or {}
        spec: SeccompRecordingSpec | None = None
        spec_error = None
        try:
            spec = SeccompRecordingSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            spec_error = "; ".join(describe_validation_error(error, (SeccompRecordingSpec,)))
        try:
            status = SeccompRecordingStatus.model_validate(body.get("status") or {})
        except ValidationError:
            status = SeccompRecordingStatus()  # Rewritten from scratch by the next write.
        return cls(
            body=body,
            namespace=metadata.get("namespace", ""),
            name=metadata.get("name", ""),
            uid=metadata.get("uid"),
            generation=metadata.get("generation"),
            deleting=bool(metadata.get("deletionTimestamp")),
            spec=spec,
            spec_error=spec_error,
            status=status,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _write_transition(
    api: ApiClients,
    namespace: str,
    name: str,
    step: Callable[[RecordingView], Transition],
) -> tuple[KubeObject | None, Transition | None]:
    """Write the status that `step(view)` computes, with a precondition; post its Events.

    `step` maps a RecordingView to a Transition. Returns the recording as written (or as
    read when nothing changed) and the Transition that was written, if any.
    """
    chosen: list[Transition] = []

    def compute(body: KubeObject) -> Mapping[str, Any] | None:
        view = RecordingView.from_body(body)
        result = step(view)
        chosen[:] = [result]
        old = body.get("status") or {}
        return status_changes(old, status_document(result.status)) or None

    written, patch = update_status(api, namespace, RECORDINGS, name, compute)
    if written is None or patch is None:
        return written, None
    events.post(written, chosen[0].events)
    return written, chosen[0]


def apply_lifecycle(
    api: ApiClients, namespace: str, name: str, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> KubeObject | None:
    """Start, stop or leave the recording as its spec, deletion and the time call for.

    An invalid spec fails the recording. Returns the recording as last read or written,
    None when it is gone.
    """

    def step(view: RecordingView) -> Transition:
        if view.spec is None:
            return _failure(view, f"invalid spec: {view.spec_error}")
        return transition(
            view.spec, view.status, generation=view.generation, deleting=view.deleting, now=_now()
        )

    written, applied = _write_transition(api, namespace, name, step)
    if applied is not None:
        logger.info("Recording is %s.", applied.status.phase)
    return written


def _failure(view: RecordingView, message: str) -> Transition:
    summary = SyncSummary(containers=view.status.containers, profiles=view.status.profiles,
                          all_final=False, problems=(message,))
    return summarize(view.status, summary, generation=view.generation, now=_now())


@dataclass
class SyncMemory:
    """Memory of one recording's passes, so that each Event is posted once."""

    reported_invalid: set[tuple[str, str]] = field(default_factory=set)
    reported_unknown: dict[str, str] = field(default_factory=dict)
    reported_conflicts: set[str] = field(default_factory=set)
    reported_timeout: bool = False


@dataclass(frozen=True)
class SyncOutcome:
    """Work that a pass over a recording left to do."""

    # Seconds until the next pass is due, or None when only a change can bring new work.
    next_delay: float | None
    # Whether the recording needs no more passes: gone, failed, or complete and final.
    done: bool


def load_results(
    api: ApiClients, view: RecordingView, memory: SyncMemory,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> list[RecordedResult]:
    """List the recording's results; invalid ones are skipped with a warning and an Event.

    A result counts when its spec names the recording and, when it has owner references,
    one of them is this recording (a recreated recording of the same name has a new UID).
    """
    selector = f"{RECORDING_LABEL}={label_value(view.name)}"
    results = []
    for body in list_custom(api, view.namespace, RECORDING_RESULTS, selector):
        metadata = body.get("metadata") or {}
        owners = [owner.get("uid") for owner in metadata.get("ownerReferences") or []]
        if owners and view.uid not in owners:
            continue
        result_name = metadata.get("name", "")
        try:
            spec = SeccompRecordingResultSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            key = (result_name, metadata.get("resourceVersion", ""))
            if key not in memory.reported_invalid:
                memory.reported_invalid.add(key)
                message = (
                    f"result {result_name} is invalid and left out:"
                    f" {'; '.join(describe_validation_error(error, (SeccompRecordingResultSpec,)))}"
                )
                logger.warning("%s", message)
                events.post_warning(view.body, Reason.RESULT_INVALID, message)
            continue
        if spec.recording != view.name:
            continue
        results.append(RecordedResult(name=result_name, spec=spec))
    return results


def unreported_containers(
    api: ApiClients, view: RecordingView, results: list[RecordedResult]
) -> list[str]:
    """Name the started containers of selected pods that no agent has sent a result for.

    A stopped recording waits for these too (within its bound), because an agent may
    still be collecting a container that ended just before the stop. Containers that
    ended before the recording started are left out, because no agent reports them.
    """
    assert view.spec is not None
    started_at = view.status.started_at
    reported = {(result.spec.pod_uid, result.spec.container) for result in results}
    wanted = view.spec.containers
    response: Any = api.core.list_namespaced_pod(
        view.namespace, label_selector=format_selector(view.spec.pod_selector),
        _preload_content=False,
    )
    missing = []
    for pod in read_json(response).get("items", []):
        metadata = pod.get("metadata") or {}
        status = pod.get("status") or {}
        for entry in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            container = entry.get("name", "")
            if not entry.get("containerID") or (wanted is not None and container not in wanted):
                continue
            if started_at is not None and _finished_before(entry, started_at):
                continue
            if (metadata.get("uid"), container) not in reported:
                missing.append(f"{metadata.get('name')}/{container}")
    return sorted(missing)


def _finished_before(container_status: Mapping[str, Any], moment: datetime) -> bool:
    """Return whether a pod's container status reports an end before `moment`.

    finishedAt has whole seconds, so a container that ended in the second of `moment`
    does not count as before it.
    """
    terminated = (container_status.get("state") or {}).get("terminated") or {}
    finished = terminated.get("finishedAt")
    if not isinstance(finished, str):
        return False
    try:
        return datetime.fromisoformat(finished) < moment.replace(microsecond=0)
    except ValueError:
        return False


def sync_recording(
    api: ApiClients,
    settings: OperatorSettings,
    namespace: str,
    name: str,
    memory: SyncMemory,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    *,
    finalize: bool = False,
    targeted: frozenset[str] = frozenset(),
) -> SyncOutcome:
    """Turn the recording's results into profiles and update its status, once.

    With `finalize` every profile is written final whatever its results report, as the
    deletion of the recording requires. Raises ApiException on API errors other than
    conflicts, and ConflictError when an object kept changing.
    """
    body = get_custom(api, namespace, RECORDINGS, name)
    if body is None:
        return SyncOutcome(next_delay=None, done=True)
    view = RecordingView.from_body(body)
    status = view.status
    if view.spec is None or status.phase not in (RecordingPhase.RECORDING, RecordingPhase.COMPLETED):
        return SyncOutcome(next_delay=None, done=status.phase is RecordingPhase.FAILED)
    if is_done(status) and not finalize:
        return SyncOutcome(next_delay=None, done=True)
    spec = view.spec

    now = _now()
    results = load_results(api, view, memory, logger)
    plan = plan_profiles(name, spec, results)
    for skipped in plan.skipped:
        logger.debug("Skipped %s.", skipped)
    stopped_at = status.completed_at if status.phase is RecordingPhase.COMPLETED else None
    timeout = settings.final_result_timeout
    timed_out = stopped_at is not None and (now - stopped_at).total_seconds() >= timeout

    written: list[str] = []
    delays: list[float] = []
    problems = list(plan.problems)
    all_final = True
    for profile in plan.profiles:
        final = finalize or is_final(profile, stopped_at=stopped_at, now=now, timeout=timeout)
        if not profile.names:
            # No syscall recorded yet, so there is nothing to allow: the profile is made
            # once names arrive, and is never made if its results end without any.
            all_final = all_final and final
            continue
        try:
            decision = write_profile(
                api, view, profile, spec.profile_template, final=final, now=now,
                min_interval=settings.profile_update_interval,
            )
        except ProfileError as error:
            problems.append(f"profile {profile.name!r}: {error}")
            continue
        _report_write(view, profile, decision, final, memory, logger)
        if decision.kind is WriteKind.CONFLICT:
            problems.append(decision.message)
        elif decision.kind is WriteKind.WAIT:
            all_final = False
            if decision.delay is not None:
                delays.append(decision.delay)
        else:
            written.append(profile.name)
            all_final = all_final and final
    if stopped_at is not None and not timed_out and not finalize:
        unreported = unreported_containers(api, view, results)
        if unreported:
            logger.debug("Waiting for the results of %s.", ", ".join(unreported))
            all_final = False
            delays.append(DELETION_POLL_INTERVAL)
    if stopped_at is not None and not timed_out and not finalize and not all_final:
        delays.append(timeout - (now - stopped_at).total_seconds())

    containers = recorded_containers(plan.profiles, written=written, timed_out=timed_out)
    late = [c for c in containers if c.state is ContainerRecordingState.FAILED]
    if late and not memory.reported_timeout:
        memory.reported_timeout = True
        listed = ", ".join(f"{c.pod}/{c.container}" for c in late[:5])
        more = f" and {len(late) - 5} more" if len(late) > 5 else ""
        message = (
            f"no final result came from {len(late)} containers within {timeout:g} s after the"
            f" recording stopped ({listed}{more}); their profiles keep the calls of their last"
            " snapshots, so check that the agents on their nodes run"
        )
        logger.warning("%s.", message)
        events.post_warning(view.body, Reason.FINAL_RESULTS_TIMED_OUT, message)

    summary = SyncSummary(
        containers=containers,
        profiles=tuple(written),
        all_final=all_final,
        problems=tuple(problems),
        targeted=targeted,
    )

    def step(current: RecordingView) -> Transition:
        return summarize(current.status, summary, generation=current.generation, now=_now())

    written_body, _ = _write_transition(api, namespace, name, step)
    final_status = RecordingView.from_body(written_body).status if written_body else status
    done = written_body is None or is_done(final_status)
    return SyncOutcome(next_delay=min(delays) if delays and not done else None, done=done)


def was_deleted_after_stop(view: RecordingView, name: str) -> bool:
    """Tell whether a stopped recording's profile is gone because someone deleted it.

    The recording listed it, so it existed; a user who deletes a profile of a finished
    recording does not want the recording to make it again.
    """
    return view.status.phase is RecordingPhase.COMPLETED and name in view.status.profiles


def write_profile(
    api: ApiClients,
    view: RecordingView,
    plan: ProfilePlan,
    template: ProfileTemplate,
    *,
    final: bool,
    now: datetime,
    min_interval: float,
) -> WriteDecision:
    """Create or update the profile of `plan` as `decide_write` decides; return the decision.

    Reads the stored profile before each decision and writes with its resourceVersion,
    so an update computed from a stale read fails with 409 and is decided again.
    Raises ProfileError when the template and the names make no valid profile, or when
    the API server rejects the profile as invalid (422).
    """
    for _ in range(CONFLICT_ATTEMPTS):
        stored = get_custom(api, view.namespace, PROFILES, plan.name)
        if stored is None and was_deleted_after_stop(view, plan.name):
            return WriteDecision(WriteKind.UNCHANGED)
        existing = ExistingProfile.from_body(stored) if stored is not None else None
        decision = decide_write(
            plan, template, recording=view.name, final=final, existing=existing, now=now,
            min_interval=min_interval,
        )
        try:
            if decision.kind is WriteKind.CREATE and decision.spec is not None:
                body = _new_profile(view, plan, decision.spec, decision.annotations)
                create_custom(api, view.namespace, PROFILES, body)
            elif decision.kind is WriteKind.UPDATE and decision.spec is not None and stored:
                body = _updated_profile(stored, plan, decision.spec, decision.annotations)
                replace_custom(api, view.namespace, PROFILES, body)
        except ApiException as error:
            if is_status(error, HTTP_CONFLICT):
                continue  # Taken or changed since the read: read again and decide again.
            if is_status(error, HTTP_INVALID):
                # The API server's schema rejects the profile, and it would again.
                raise ProfileError(f"the API server rejected it: {describe_error(error)}") from error
            raise
        if decision.kind in (WriteKind.CREATE, WriteKind.UPDATE):
            PROFILE_WRITES.labels(decision.kind.value).inc()
        return decision
    raise ConflictError(f"{PROFILES} {view.namespace}/{plan.name}")


def _spec_document(name: str, namespace: str, spec: SeccompProfileSpec) -> dict[str, Any]:
    profile = SeccompProfile(metadata=ObjectMeta(name=name, namespace=namespace), spec=spec)
    document: dict[str, Any] = kubernetes_document(profile)["spec"]
    return document


def _new_profile(
    view: RecordingView,
    plan: ProfilePlan,
    spec: SeccompProfileSpec,
    annotation_changes: Mapping[str, str | None],
) -> KubeObject:
    annotations = {key: value for key, value in annotation_changes.items() if value is not None}
    return {
        "apiVersion": API_VERSION,
        "kind": "SeccompProfile",
        "metadata": {
            "name": plan.name,
            "namespace": view.namespace,
            "labels": dict(plan.labels),
            "annotations": annotations,
        },
        "spec": _spec_document(plan.name, view.namespace, spec),
    }


def _updated_profile(
    stored: KubeObject,
    plan: ProfilePlan,
    spec: SeccompProfileSpec,
    annotation_changes: Mapping[str, str | None],
) -> KubeObject:
    metadata = dict(stored.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    for key, value in annotation_changes.items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    metadata["annotations"] = annotations
    metadata["labels"] = {**(metadata.get("labels") or {}), **plan.labels}
    return {
        "apiVersion": stored.get("apiVersion"),
        "kind": stored.get("kind"),
        "metadata": metadata,
        "spec": _spec_document(plan.name, metadata.get("namespace", ""), spec),
    }


def _report_write(
    view: RecordingView,
    plan: ProfilePlan,
    decision: WriteDecision,
    final: bool,
    memory: SyncMemory,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Log a write decision and post its Events on the profile or the recording."""
    profile_ref = {
        "apiVersion": view.body.get("apiVersion"),
        "kind": "SeccompProfile",
        "metadata": {"name": plan.name, "namespace": view.namespace},
    }
    results = len(plan.results)
    from_results = f"from {results} result{'' if results == 1 else 's'} of recording {view.name}"
    notes: list[EventToPost] = []
    if decision.kind is WriteKind.CREATE:
        message = f"created with {len(decision.added)} syscalls {from_results}"
        logger.info("Profile %s %s.", plan.name, message)
        notes.append(EventToPost(Reason.PROFILE_CREATED, message))
    elif decision.kind is WriteKind.UPDATE and decision.added:
        message = f"added {len(decision.added)} syscalls {from_results}: {describe_names(decision.added)}"
        logger.info("Profile %s: %s.", plan.name, message)
        notes.append(EventToPost(Reason.PROFILE_UPDATED, message))
    elif decision.kind is WriteKind.UPDATE:
        logger.info("Profile %s rewritten %s.", plan.name, from_results)
    elif decision.kind is WriteKind.WAIT:
        logger.debug("%s.", decision.message)
    if decision.finalizes or (decision.kind is WriteKind.CREATE and final):
        cause = "every recorded container ended" if plan.all_final else "the recording stopped"
        message = f"final because {cause}, so it will not change any more"
        logger.info("Profile %s is %s.", plan.name, message)
        notes.append(EventToPost(Reason.PROFILE_FINAL, message))
    events.post(profile_ref, notes)

    if decision.kind is WriteKind.CONFLICT and plan.name not in memory.reported_conflicts:
        memory.reported_conflicts.add(plan.name)
        logger.warning("%s.", decision.message)
        events.post_warning(view.body, Reason.PROFILE_NAME_CONFLICT, decision.message)
    unknown = format_unknown_syscalls(plan.unknown_syscalls)
    if unknown and memory.reported_unknown.get(plan.name) != unknown:
        memory.reported_unknown[plan.name] = unknown
        message = (
            f"profile {plan.name}: the agents saw syscalls without a name ({unknown}); they"
            " are not in the profile, so update the agent's syscall tables and record again"
        )
        logger.warning("%s.", message)
        events.post_warning(view.body, Reason.UNKNOWN_SYSCALLS, message)


def deletion_wait(
    api: ApiClients, settings: OperatorSettings, namespace: str, name: str
) -> tuple[float | None, list[str]]:
    """Return how long a deleted recording still waits for final results, and for which.

    The wait is bounded: it ends `final_result_timeout` seconds after the recording
    stopped. Returns (None, []) when the profiles may be finalized now, else the seconds
    until the next check and the results that are not final yet.
    """
    body = get_custom(api, namespace, RECORDINGS, name)
    if body is None:
        return None, []
    view = RecordingView.from_body(body)
    if view.spec is None or view.status.phase is not RecordingPhase.COMPLETED:
        return None, []
    stopped_at = view.status.completed_at or _now()
    remaining = settings.final_result_timeout - (_now() - stopped_at).total_seconds()
    if remaining <= 0:
        return None, []
    results = load_results(api, view, SyncMemory(), logging.getLogger(__name__))
    pending = sorted(result.name for result in results if not result.spec.final)
    pending += unreported_containers(api, view, results)
    if not pending:
        return None, []
    return min(DELETION_POLL_INTERVAL, remaining), pending
