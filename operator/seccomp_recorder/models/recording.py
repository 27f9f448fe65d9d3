"""Pydantic models of the SeccompRecording resource: which pods to record, and how.

A SeccompRecording selects pods by label. The node agents record the selected pods'
containers and write SeccompRecordingResults. The operator merges those into
SeccompProfiles built on `spec.profileTemplate`: one per container name with
mergeStrategy Containers, or one per pod and container with mergeStrategy None.
"""

from __future__ import annotations

import re
from collections import Counter
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    field_validator,
    model_validator,
)

from seccomp_recorder.models.errors import invalid, quote
from seccomp_recorder.models.meta import (
    API_VERSION,
    DNS_LABEL_PATTERN,
    LIST_TYPE_SET,
    MAX_LABEL_LENGTH,
    Conditions,
    ContainerName,
    KopfState,
    Model,
    NodeName,
    ObjectName,
    ObservedGeneration,
    StatusModel,
    Timestamp,
    check_kubernetes_name,
    check_name_length,
    check_resource_field,
    parse_member,
    reject_duplicates,
)
from seccomp_recorder.models.profile import (
    Action,
    ActionField,
    Architectures,
    ErrnoRet,
    ObjectMeta,
    check_errno_ret,
    errno_ret_rules,
)
from seccomp_recorder.models.selectors import LabelSelector

KIND: Final = "SeccompRecording"

# Go's time.ParseDuration syntax, limited to the units that make sense for a recording:
# one or more decimal numbers, each with a unit, such as `90s`, `10m` or `1h30m`.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"
MAX_DURATION_LENGTH = 32
_DURATION_TERM = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_SECONDS_PER_UNIT: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Parse a Go-style duration such as `1h30m` or `90s` and return it in seconds.

    The units are h, m, s and ms, and a number may have a decimal fraction (`1.5h`).
    Raises ValueError naming the text when it is not such a duration.
    """
    if len(text) > MAX_DURATION_LENGTH or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(
            f"invalid duration {quote(text)}: use numbers with the units h, m, s or ms,"
            ' such as "90s", "10m" or "1h30m"'
        )
    return sum(
        float(number) * _SECONDS_PER_UNIT[unit] for number, unit in _DURATION_TERM.findall(text)
    )


def _check_duration(value: Any) -> Any:
    if not isinstance(value, str):
        raise invalid(
            "invalid_duration",
            f'invalid duration {quote(value)}: use a string such as "90s", "10m" or "1h30m"',
        )
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise invalid("invalid_duration", str(error)) from None
    if seconds <= 0:
        raise invalid(
            "invalid_duration",
            f"duration {quote(value)} is zero: set a positive duration, or remove duration"
            " to record until active is set to false",
        )
    return value


Duration = Annotated[
    str,
    Field(
        max_length=MAX_DURATION_LENGTH,
        pattern=DURATION_PATTERN,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.matches('[1-9]')",
                    "message": "duration is zero: set a positive duration, or remove duration"
                    " to record until active is set to false",
                }
            ]
        },
    ),
    BeforeValidator(_check_duration),
]


class MergeStrategy(StrEnum):
    """Grouping of the recorded containers into profiles."""

    # One profile per container name, merged across the selected pods (replicas).
    CONTAINERS = "Containers"
    # One profile per pod and container.
    NONE = "None"


class ProfileTemplate(Model):
    """Settings of the profiles that a recording produces; the recorded syscalls are allowed."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.defaultAction != 'SCMP_ACT_ALLOW'",
                    "message": "defaultAction SCMP_ACT_ALLOW would allow every syscall that was"
                    " not recorded: use an action that denies, such as SCMP_ACT_ERRNO",
                    "fieldPath": ".defaultAction",
                },
                *errno_ret_rules("defaultAction", "defaultErrnoRet"),
            ]
        }
    )

    default_action: ActionField = Action.ERRNO
    """Action taken for every syscall that was not recorded; SCMP_ACT_ALLOW is rejected."""

    default_errno_ret: ErrnoRet | None = None
    """Errno returned by a default action of SCMP_ACT_ERRNO (EPERM when unset)."""

    architectures: Architectures = ()
    """Architectures the filter accepts, in addition to the native one."""

    base_profile_name: ObjectName | None = None
    """Name of a SeccompProfile in the same namespace whose rules the profiles are based on."""

    @model_validator(mode="after")
    def _check(self) -> ProfileTemplate:
        if self.default_action is Action.ALLOW:
            raise invalid(
                "template_allows_everything",
                "defaultAction SCMP_ACT_ALLOW would allow every syscall that was not"
                " recorded: use an action that denies, such as SCMP_ACT_ERRNO",
            )
        check_errno_ret(self.default_action, self.default_errno_ret, "defaultErrnoRet")
        return self


# A recording must select pods by at least one label: an empty selector would record
# every pod in the namespace. The rule also catches `podSelector: {app: redis}`, because
# the API server prunes the unknown field `app` and leaves an empty selector.
_SELECTOR_NOT_EMPTY_RULE: Final[JsonValue] = {
    "rule": "(has(self.matchLabels) && size(self.matchLabels) > 0)"
    " || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
    "message": "podSelector selects no labels: put the labels under matchLabels, such as"
    " {matchLabels: {app: redis}}, or add matchExpressions",
}


def _check_selector_not_empty(selector: LabelSelector) -> LabelSelector:
    if selector.is_empty():
        raise invalid(
            "empty_pod_selector",
            "podSelector selects no labels: put the labels under matchLabels, such as"
            " {matchLabels: {app: redis}}, or add matchExpressions",
        )
    return selector


def _check_containers_not_empty(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and not value:
        raise invalid(
            "no_containers",
            "containers is empty: list the containers to record, or remove containers to"
            " record every container",
        )
    return value


class SeccompRecordingSpec(Model):
    """Selection of the pods and containers to record, and settings of the profiles made of them."""

    pod_selector: Annotated[
        LabelSelector,
        Field(json_schema_extra={"x-kubernetes-validations": [_SELECTOR_NOT_EMPTY_RULE]}),
        AfterValidator(_check_selector_not_empty),
    ]
    """Label selector of the pods to record, in the namespace of the recording."""

    containers: (
        Annotated[
            tuple[ContainerName, ...],
            Field(min_length=1, json_schema_extra=LIST_TYPE_SET),
            BeforeValidator(_check_containers_not_empty),
            BeforeValidator(reject_duplicates("container")),
        ]
        | None
    ) = None
    """Names of the containers to record; when absent, every container, init containers included."""

    merge_strategy: Annotated[
        MergeStrategy, BeforeValidator(parse_member(MergeStrategy, "merge strategy"))
    ] = MergeStrategy.CONTAINERS
    """Containers: one profile per container name, merged across the selected pods.
    None: one profile per pod and container."""

    profile_template: ProfileTemplate = ProfileTemplate()
    """Settings of the profiles that the recording produces."""

    active: StrictBool = True
    """Whether the recording runs; setting it to false stops the recording."""

    duration: Duration | None = None
    """Time after the start at which the recording stops, such as `10m` or `1h30m`."""

    def duration_seconds(self) -> float | None:
        """Return the duration in seconds, or None when the recording has no duration."""
        return None if self.duration is None else parse_duration(self.duration)


class RecordingPhase(StrEnum):
    """Summary of a SeccompRecording's state, shown by `kubectl get srec`."""

    PENDING = "Pending"
    RECORDING = "Recording"
    COMPLETED = "Completed"
    FAILED = "Failed"


class ContainerRecordingState(StrEnum):
    """State of the recording of one container."""

    RECORDING = "Recording"
    RECORDED = "Recorded"
    FAILED = "Failed"


class RecordingConditionType(StrEnum):
    """Types of the conditions in a SeccompRecording's status."""

    RECORDING = "Recording"  # Selected containers are being recorded.
    COMPLETED = "Completed"  # The recording stopped and its profiles are written.
    # The agent of every node that runs one has its recorder attached, so containers
    # started from now on are recorded from their first syscall.
    AGENTS_ATTACHED = "AgentsAttached"


class RecordingAgent(StatusModel):
    """The recorder of one node's agent, as that agent reports it."""

    attached: StrictBool
    """Whether the agent's eBPF recorder is attached for this recording."""

    since: Timestamp | None = None
    """Time the recorder was attached."""


PodUID = Annotated[
    str,
    Field(max_length=MAX_LABEL_LENGTH, pattern=DNS_LABEL_PATTERN),
    BeforeValidator(check_kubernetes_name("pod UID", DNS_LABEL_PATTERN, MAX_LABEL_LENGTH)),
]


class RecordedContainer(StatusModel):
    """One container of a selected pod, and the state of its recording."""

    pod: ObjectName
    """Name of the pod."""

    pod_uid: Annotated[PodUID, Field(alias="podUID")]
    """UID of the pod."""

    container: ContainerName
    """Name of the container in the pod."""

    node: NodeName | None = None
    """Name of the node the pod runs on."""

    container_id: Annotated[str | None, Field(alias="containerID")] = None
    """ID of the container as the pod status writes it, such as `containerd://4f3a...`."""

    init_container: StrictBool = False
    """Whether the container is an init container."""

    state: ContainerRecordingState
    """State of the recording: Recording, Recorded or Failed."""

    profile: ObjectName | None = None
    """Name of the SeccompProfile the container's syscalls went into."""


def _check_unique_containers(
    containers: tuple[RecordedContainer, ...],
) -> tuple[RecordedContainer, ...]:
    counts = Counter((container.pod_uid, container.container) for container in containers)
    repeated = sorted(key for key, count in counts.items() if count > 1)
    if repeated:
        listed = ", ".join(f"{container} of pod UID {pod_uid}" for pod_uid, container in repeated)
        raise invalid(
            "duplicate_container",
            f"containers are listed more than once ({listed}): list each container once",
        )
    return containers


class SeccompRecordingStatus(StatusModel):
    """Observed state of a SeccompRecording, written by the operator."""

    kopf: KopfState = None
    """Handler progress and the last handled spec, kept by the operator's framework (kopf)."""

    phase: RecordingPhase | None = None
    """Summary of the state: Pending, Recording, Completed or Failed."""

    selector: str | None = None
    """The pod selector as kubectl prints selectors, such as `app=redis,tier in (cache)`."""

    started_at: Timestamp | None = None
    """Time the recording started."""

    completed_at: Timestamp | None = None
    """Time the recording stopped."""

    containers: Annotated[
        tuple[RecordedContainer, ...],
        Field(
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["podUID", "container"],
            }
        ),
        AfterValidator(_check_unique_containers),
    ] = ()
    """Containers of the selected pods and the state of their recording."""

    profiles: Annotated[tuple[ObjectName, ...], Field(json_schema_extra=LIST_TYPE_SET)] = ()
    """Names of the SeccompProfiles the recording produced."""

    agents: dict[NodeName, RecordingAgent] = Field(default_factory=dict)
    """The node agents' recorders by node name, each entry written by that node's agent."""

    profile_count: Annotated[int, Field(ge=0)] | None = None
    """Number of profiles in `profiles`, for `kubectl get`."""

    observed_generation: ObservedGeneration | None = None
    """metadata.generation of the recording that this status describes."""

    conditions: Conditions = ()
    """Conditions of types Recording and Completed."""


# Recording names are label values of the objects that a recording creates, and label
# values have at most 63 characters.
MAX_RECORDING_NAME_LENGTH = MAX_LABEL_LENGTH


class SeccompRecording(Model):
    """The SeccompRecording custom resource (`seccomp-recorder.io/v1alpha1`)."""

    api_version: Annotated[
        Literal["seccomp-recorder.io/v1alpha1"],
        BeforeValidator(check_resource_field("apiVersion", API_VERSION)),
    ] = API_VERSION
    kind: Annotated[
        Literal["SeccompRecording"], BeforeValidator(check_resource_field("kind", KIND))
    ] = KIND
    metadata: ObjectMeta
    spec: SeccompRecordingSpec
    status: SeccompRecordingStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _check_name_length(cls, metadata: ObjectMeta) -> ObjectMeta:
        check_name_length(
            "recording",
            MAX_RECORDING_NAME_LENGTH,
            "the name is the value of the label seccomp-recorder.io/recording, and label"
            f" values have at most {MAX_LABEL_LENGTH} characters",
        )(metadata.name)
        return metadata
