"""Pydantic model of the SeccompRecordingResult resource: what a node agent recorded.

A node agent writes one SeccompRecordingResult for each recorded container of each pod,
and updates it with every new snapshot (`sequence` grows) until the container ended
(`final`). The operator reads the results of a SeccompRecording and merges them into
SeccompProfiles. A result is owned by its SeccompRecording, so it goes when the
recording goes.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool

from seccomp_recorder.models.errors import invalid, quote
from seccomp_recorder.models.meta import (
    API_VERSION,
    LIST_TYPE_SET,
    ContainerName,
    Model,
    NodeName,
    ObjectName,
    check_resource_field,
    reject_duplicates,
)
from seccomp_recorder.models.profile import (
    Architecture,
    ArchitectureField,
    ObjectMeta,
    SyscallName,
)
from seccomp_recorder.models.recording import PodUID

KIND: Final = "SeccompRecordingResult"

SyscallNames = Annotated[
    tuple[SyscallName, ...],
    Field(json_schema_extra=LIST_TYPE_SET),
    BeforeValidator(reject_duplicates("syscall")),
    AfterValidator(lambda names: tuple(sorted(names))),
]


def _check_unique_numbers(numbers: Any) -> Any:
    if isinstance(numbers, (list, tuple)):
        counts = Counter(numbers)
        repeated = sorted(number for number, count in counts.items() if count > 1)
        if repeated:
            listed = ", ".join(quote(number) for number in repeated)
            raise invalid(
                "duplicate_entries",
                f"syscall numbers {listed} listed more than once: list each once",
            )
    return numbers


SyscallNumbers = Annotated[
    tuple[Annotated[int, Field(ge=0)], ...],
    Field(json_schema_extra=LIST_TYPE_SET),
    BeforeValidator(_check_unique_numbers),
    AfterValidator(lambda numbers: tuple(sorted(numbers))),
]


class SeccompRecordingResultSpec(Model):
    """Record of the syscalls that a node agent saw one container of one pod make."""

    recording: ObjectName
    """Name of the SeccompRecording, in the same namespace, that the container was recorded for."""

    pod: ObjectName
    """Name of the pod."""

    pod_uid: Annotated[PodUID, Field(alias="podUID")]
    """UID of the pod."""

    container: ContainerName
    """Name of the container in the pod."""

    container_id: Annotated[str, Field(alias="containerID")]
    """ID of the container as the pod status writes it, such as `containerd://4f3a...`."""

    node: NodeName
    """Name of the node that recorded the container."""

    init_container: StrictBool = False
    """Whether the container is an init container."""

    final: StrictBool = False
    """Whether the container ended, so this is its complete record."""

    sequence: Annotated[int, Field(ge=0)]
    """Number of the snapshot; the agent increases it with every update."""

    syscalls: Annotated[
        dict[ArchitectureField, SyscallNames], Field(max_length=len(Architecture))
    ] = Field(default_factory=dict)
    """Names of the syscalls made, sorted, by architecture (SCMP_ARCH_...)."""

    unknown_syscalls: Annotated[
        dict[ArchitectureField, SyscallNumbers], Field(max_length=len(Architecture))
    ] = Field(default_factory=dict)
    """Numbers of the syscalls made that have no name in the agent's tables, sorted, by architecture."""

    filter_point: str | None = None
    """Method by which the agent found where the runtime installs the seccomp filter, such as
    `seccomp-filter` or `runtime-calls/runc/no-new-privileges`."""

    runtime: str | None = None
    """OCI runtime that started the container, such as `runc` or `crun`."""

    no_new_privileges: StrictBool | None = None
    """Whether the container ran with no_new_privs (allowPrivilegeEscalation false)."""


class SeccompRecordingResult(Model):
    """The SeccompRecordingResult custom resource (`seccomp-recorder.io/v1alpha1`)."""

    api_version: Annotated[
        Literal["seccomp-recorder.io/v1alpha1"],
        BeforeValidator(check_resource_field("apiVersion", API_VERSION)),
    ] = API_VERSION
    kind: Annotated[
        Literal["SeccompRecordingResult"], BeforeValidator(check_resource_field("kind", KIND))
    ] = KIND
    metadata: ObjectMeta
    spec: SeccompRecordingResultSpec
