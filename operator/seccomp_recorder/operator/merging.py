"""Turning the results of a recording into SeccompProfiles: grouping, union and write decisions.

Node agents write one SeccompRecordingResult per recorded container of each pod. These
pure functions group a recording's results by the profile they map to (`plan_profiles`),
build each profile's spec from the union of their syscalls and the recording's template
(`build_profile_spec`), and decide whether and when to write it (`decide_write`).

Every decision starts from the full set of results and the profile as stored, never
from the one result that changed. So two results handled at the same time cannot drop
each other's syscalls, as long as the caller writes with a resourceVersion precondition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import ValidationError

from seccomp_recorder.models.algebra import allowed_syscalls, build_allow_list
from seccomp_recorder.models.names import (
    RECORDING_LABEL,
    label_value,
    object_labels,
    profile_name,
)
from seccomp_recorder.models.profile import Architecture, SeccompProfileSpec
from seccomp_recorder.models.recording import MergeStrategy, ProfileTemplate, SeccompRecordingSpec
from seccomp_recorder.models.result import SeccompRecordingResultSpec

# "true" once every result of the profile is final or its recording stopped, so users and
# GitOps tools know the profile will not change any more. "false" before.
FINAL_ANNOTATION: Final = "seccomp-recorder.io/final"
# Time of the operator's last write of the profile, for the bound on the update rate.
UPDATED_AT_ANNOTATION: Final = "seccomp-recorder.io/updated-at"
# Syscall numbers that an agent saw but could not name, by architecture, such as
# "SCMP_ARCH_X86_64=451,452". They are not in the profile, because a rule needs a name.
UNKNOWN_SYSCALLS_ANNOTATION: Final = "seccomp-recorder.io/unknown-syscalls"

# Seconds to wait before looking again at a profile that is being deleted.
DELETING_RETRY_DELAY: Final = 5.0

_ARCHITECTURE_ORDER: Final = {architecture: index for index, architecture in enumerate(Architecture)}


@dataclass(frozen=True)
class RecordedResult:
    """A SeccompRecordingResult as the operator reads it: its object name and spec."""

    name: str
    spec: SeccompRecordingResultSpec


@dataclass(frozen=True)
class ProfilePlan:
    """One profile of a recording and the results that are merged into it."""

    name: str
    labels: Mapping[str, str]
    results: tuple[RecordedResult, ...]

    @property
    def syscalls(self) -> dict[Architecture, frozenset[str]]:
        """Return the union of the results' syscall names, by architecture."""
        union: dict[Architecture, set[str]] = {}
        for result in self.results:
            for architecture, names in result.spec.syscalls.items():
                union.setdefault(architecture, set()).update(names)
        return {architecture: frozenset(names) for architecture, names in union.items()}

    @property
    def unknown_syscalls(self) -> dict[Architecture, frozenset[int]]:
        """Return the union of the results' syscall numbers without a name, by architecture."""
        union: dict[Architecture, set[int]] = {}
        for result in self.results:
            for architecture, numbers in result.spec.unknown_syscalls.items():
                union.setdefault(architecture, set()).update(numbers)
        return {
            architecture: frozenset(numbers) for architecture, numbers in union.items() if numbers
        }

    @property
    def names(self) -> frozenset[str]:
        """Return the syscall names of every architecture; one allow rule lists them all."""
        return frozenset().union(*self.syscalls.values())

    @property
    def all_final(self) -> bool:
        """Return whether every result is final, so no container of the profile still runs."""
        return all(result.spec.final for result in self.results)


@dataclass(frozen=True)
class Plan:
    """The profiles that a recording's results map to, and what keeps others from being made."""

    profiles: tuple[ProfilePlan, ...]
    # Problems that the recording cannot resolve; each makes the recording fail.
    problems: tuple[str, ...] = ()
    # Results that were left out, with the reason, such as a container not selected.
    skipped: tuple[str, ...] = ()


def plan_profiles(
    recording: str, spec: SeccompRecordingSpec, results: Iterable[RecordedResult]
) -> Plan:
    """Group `results` of `recording` by the name of the profile each maps to.

    With mergeStrategy Containers the results of one container name are merged across
    pods (replicas); with None every pod gets its own profiles. Results of containers
    that `spec.containers` does not list are skipped. Two different pairs of pod and
    container whose profile names coincide are a problem, because merging them would
    mix unrelated workloads into one profile.
    """
    grouped: dict[str, list[RecordedResult]] = {}
    labels: dict[str, dict[str, str]] = {}
    sources: dict[str, set[tuple[str | None, str]]] = {}
    skipped: list[str] = []
    for result in sorted(results, key=lambda result: result.name):
        container = result.spec.container
        if spec.containers is not None and container not in spec.containers:
            skipped.append(
                f"result {result.name}: container {container!r} is not in spec.containers"
            )
            continue
        pod = result.spec.pod if spec.merge_strategy is MergeStrategy.NONE else None
        name = profile_name(recording, spec.merge_strategy, container, pod)
        grouped.setdefault(name, []).append(result)
        labels[name] = object_labels(recording, container, pod)
        sources.setdefault(name, set()).add((pod, container))

    problems = []
    for name, pairs in sorted(sources.items()):
        if len(pairs) > 1:
            listed = " and ".join(
                f"container {container!r} of pod {pod!r}" for pod, container in sorted(pairs)
            )
            problems.append(
                f"{listed} both map to profile {name!r}: rename a pod or container, or record"
                " them with separate recordings"
            )
    conflicting = {name for name, pairs in sources.items() if len(pairs) > 1}
    profiles = tuple(
        ProfilePlan(name=name, labels=labels[name], results=tuple(group))
        for name, group in sorted(grouped.items())
        if name not in conflicting
    )
    return Plan(profiles=profiles, problems=tuple(problems), skipped=tuple(skipped))


def build_profile_spec(
    template: ProfileTemplate, names: Iterable[str], seen_architectures: Iterable[Architecture]
) -> SeccompProfileSpec:
    """Build the allow-list spec of a recorded profile from `template`.

    The architectures are the template's when it lists any, else those the results were
    recorded on, in the order of the Architecture enum. Raises ProfileError when no
    profile can be built, such as for an empty `names`.
    """
    architectures = template.architectures or tuple(
        sorted(set(seen_architectures), key=_ARCHITECTURE_ORDER.__getitem__)
    )
    spec = build_allow_list(
        names,
        architectures=architectures,
        default_action=template.default_action,
        default_errno_ret=template.default_errno_ret,
    )
    if template.base_profile_name is not None:
        spec = spec.model_copy(update={"base_profile_name": template.base_profile_name})
    return spec


def is_final(plan: ProfilePlan, *, stopped_at: datetime | None, now: datetime, timeout: float) -> bool:
    """Return whether the profile of `plan` is final.

    It is final when every result is, or when its recording stopped at `stopped_at` and
    the agents had `timeout` seconds to send their final results since.
    """
    if plan.all_final:
        return True
    return stopped_at is not None and (now - stopped_at).total_seconds() >= timeout


def format_unknown_syscalls(unknown: Mapping[Architecture, Iterable[int]]) -> str | None:
    """Format syscall numbers without a name as "SCMP_ARCH_X86_64=451,452", or None for none."""
    parts = [
        f"{architecture.value}={','.join(str(number) for number in sorted(numbers))}"
        for architecture, numbers in sorted(
            unknown.items(), key=lambda item: _ARCHITECTURE_ORDER[item[0]]
        )
        if numbers
    ]
    return ";".join(parts) or None


def format_time(moment: datetime) -> str:
    """Format a moment in RFC 3339 in UTC with microseconds, for UPDATED_AT_ANNOTATION."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    """Parse an RFC 3339 time as Kubernetes and `format_time` write it; None when invalid."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True)
class ExistingProfile:
    """The parts of a stored SeccompProfile that decide how it may be written."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    # None when the stored spec is not a valid profile spec.
    spec: SeccompProfileSpec | None
    created_at: datetime | None = None
    deleting: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ExistingProfile:
        """Read the stored object `body` as the API returns it."""
        metadata = body.get("metadata") or {}
        try:
            spec: SeccompProfileSpec | None = SeccompProfileSpec.model_validate(
                body.get("spec") or {}
            )
        except ValidationError:
            spec = None
        return cls(
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            spec=spec,
            created_at=parse_time(metadata.get("creationTimestamp")),
            deleting=bool(metadata.get("deletionTimestamp")),
        )


class WriteKind(StrEnum):
    """Kind of write that one profile of a recording gets."""

    CREATE = "create"
    UPDATE = "update"
    # An update is due but waits for the rate bound or for a deletion in progress.
    WAIT = "wait"
    UNCHANGED = "unchanged"
    # The name belongs to a profile that this recording did not make.
    CONFLICT = "conflict"


@dataclass(frozen=True)
class WriteDecision:
    """The outcome of `decide_write`."""

    kind: WriteKind
    # The spec to write, for CREATE and UPDATE.
    spec: SeccompProfileSpec | None = None
    # Annotations to set for CREATE and UPDATE. A value of None removes the annotation.
    annotations: Mapping[str, str | None] = field(default_factory=dict)
    # Syscall names the write adds to the stored profile.
    added: frozenset[str] = frozenset()
    # Whether the write turns the profile final.
    finalizes: bool = False
    # Seconds until the next attempt, for WAIT.
    delay: float | None = None
    message: str = ""


def decide_write(
    plan: ProfilePlan,
    template: ProfileTemplate,
    *,
    recording: str,
    final: bool,
    existing: ExistingProfile | None,
    now: datetime,
    min_interval: float,
) -> WriteDecision:
    """Decide whether to create, update or leave the profile of `plan`.

    The profile never shrinks: the names it allows now stay in it, in union with what the
    results recorded. An update waits until `min_interval` seconds passed since the last
    write, unless it makes the profile final. A profile of the same name that another
    recording or a person made is never touched (CONFLICT).
    Raises ProfileError when `template` and the names make no valid profile.
    """
    if existing is not None and existing.labels.get(RECORDING_LABEL) != label_value(recording):
        owner = existing.labels.get(RECORDING_LABEL)
        made_by = f"recording {owner!r}" if owner else "someone else (it has no recording label)"
        return WriteDecision(
            WriteKind.CONFLICT,
            message=f"profile {plan.name!r} already exists and was made by {made_by}: delete"
            " that profile or rename this recording",
        )
    if existing is not None and existing.deleting:
        return WriteDecision(
            WriteKind.WAIT,
            delay=DELETING_RETRY_DELAY,
            message=f"profile {plan.name!r} is being deleted; it is created again once it is gone",
        )

    kept = allowed_syscalls(existing.spec) if existing is not None and existing.spec else frozenset()
    spec = build_profile_spec(template, plan.names | kept, plan.syscalls)
    annotations: dict[str, str | None] = {
        FINAL_ANNOTATION: "true" if final else "false",
        UNKNOWN_SYSCALLS_ANNOTATION: format_unknown_syscalls(plan.unknown_syscalls),
    }
    if existing is None:
        return WriteDecision(
            WriteKind.CREATE,
            spec=spec,
            annotations={**annotations, UPDATED_AT_ANNOTATION: format_time(now)},
            added=allowed_syscalls(spec),
            finalizes=final,
        )

    unchanged = existing.spec == spec and all(
        existing.annotations.get(key) == value for key, value in annotations.items()
    )
    if unchanged:
        return WriteDecision(WriteKind.UNCHANGED)
    finalizes = final and existing.annotations.get(FINAL_ANNOTATION) != "true"
    last_write = parse_time(existing.annotations.get(UPDATED_AT_ANNOTATION)) or existing.created_at
    if not finalizes and last_write is not None:
        elapsed = (now - last_write).total_seconds()
        if elapsed < min_interval:
            return WriteDecision(
                WriteKind.WAIT,
                delay=min_interval - elapsed,
                message=f"profile {plan.name!r} was written {elapsed:.1f} s ago; the next"
                f" update waits for the minimum interval of {min_interval:g} s",
            )
    return WriteDecision(
        WriteKind.UPDATE,
        spec=spec,
        annotations={**annotations, UPDATED_AT_ANNOTATION: format_time(now)},
        added=allowed_syscalls(spec) - kept,
        finalizes=finalizes,
    )


def describe_names(names: Iterable[str], limit: int = 10) -> str:
    """List up to `limit` syscall names for a message, with the count of the rest."""
    ordered = sorted(names)
    listed = ", ".join(ordered[:limit])
    rest = len(ordered) - limit
    return f"{listed} and {rest} more" if rest > 0 else listed

