"""Pydantic models of a seccomp profile: the spec and the Kubernetes SeccompProfile resource.

The spec keeps the field names of the OCI runtime spec's `LinuxSeccomp` and of the Security
Profiles Operator's SeccompProfile, so a profile moves between the two with a change of
`apiVersion`. Python attributes are snake_case and accept the camelCase names as aliases.

Validation here needs no syscall table: it rejects what no runtime can load, and each
message names the value and the fix. `seccomp_recorder.syscalls.check` adds the checks that
need tables. The CRDs are generated from these models, so constraints that a JSON schema can
express are also declared as `Field` constraints; the before-validators only give them
clearer messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from seccomp_recorder.models.errors import invalid, quote
from seccomp_recorder.models.meta import (
    API_VERSION,
    LIST_TYPE_SET,
    Conditions,
    KopfState,
    Model,
    NamespaceName,
    NodeName,
    ObjectName,
    ObservedGeneration,
    StatusModel,
    Timestamp,
    check_name_length,
    parse_member,
    reject_duplicates,
)

KIND: Final = "SeccompProfile"

# The kernel caps the errno of SECCOMP_RET_ERRNO at MAX_ERRNO (kernel/seccomp.c), so a
# larger errnoRet would silently turn into 4095.
MAX_ERRNO = 4095
# SECCOMP_RET_TRACE hands its 16-bit SECCOMP_RET_DATA to the tracer as the event message.
MAX_TRACE_DATA = 0xFFFF
MAX_ARGUMENT_INDEX = 5  # Linux syscalls take at most 6 arguments, numbered 0 to 5.
MAX_UINT64 = 2**64 - 1

# Syscall names in the kernel's tables: lower-case letters, digits and underscores.
SYSCALL_NAME_PATTERN = r"^[a-z0-9_]+$"


class Action(StrEnum):
    """Seccomp rule action, named as in libseccomp's seccomp.h."""

    KILL = "SCMP_ACT_KILL"
    KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"
    KILL_THREAD = "SCMP_ACT_KILL_THREAD"
    TRAP = "SCMP_ACT_TRAP"
    ERRNO = "SCMP_ACT_ERRNO"
    TRACE = "SCMP_ACT_TRACE"
    ALLOW = "SCMP_ACT_ALLOW"
    LOG = "SCMP_ACT_LOG"
    NOTIFY = "SCMP_ACT_NOTIFY"


# Actions that carry a return value: libseccomp's SCMP_ACT_ERRNO(x) and SCMP_ACT_TRACE(x),
# and the only ones for which runc passes errnoRet on.
ACTIONS_WITH_ERRNO = frozenset({Action.ERRNO, Action.TRACE})


class Operator(StrEnum):
    """Comparison operator of a syscall argument condition, named as in libseccomp."""

    NE = "SCMP_CMP_NE"
    LT = "SCMP_CMP_LT"
    LE = "SCMP_CMP_LE"
    EQ = "SCMP_CMP_EQ"
    GE = "SCMP_CMP_GE"
    GT = "SCMP_CMP_GT"
    MASKED_EQ = "SCMP_CMP_MASKED_EQ"


class Architecture(StrEnum):
    """Seccomp architecture: the names runc's seccomp configuration accepts."""

    X86 = "SCMP_ARCH_X86"
    X86_64 = "SCMP_ARCH_X86_64"
    X32 = "SCMP_ARCH_X32"
    ARM = "SCMP_ARCH_ARM"
    AARCH64 = "SCMP_ARCH_AARCH64"
    MIPS = "SCMP_ARCH_MIPS"
    MIPS64 = "SCMP_ARCH_MIPS64"
    MIPS64N32 = "SCMP_ARCH_MIPS64N32"
    MIPSEL = "SCMP_ARCH_MIPSEL"
    MIPSEL64 = "SCMP_ARCH_MIPSEL64"
    MIPSEL64N32 = "SCMP_ARCH_MIPSEL64N32"
    PPC = "SCMP_ARCH_PPC"
    PPC64 = "SCMP_ARCH_PPC64"
    PPC64LE = "SCMP_ARCH_PPC64LE"
    RISCV64 = "SCMP_ARCH_RISCV64"
    S390 = "SCMP_ARCH_S390"
    S390X = "SCMP_ARCH_S390X"
    LOONGARCH64 = "SCMP_ARCH_LOONGARCH64"


class Flag(StrEnum):
    """Flag passed to seccomp(2) when the filter is installed, as the OCI runtime spec lists."""

    TSYNC = "SECCOMP_FILTER_FLAG_TSYNC"
    LOG = "SECCOMP_FILTER_FLAG_LOG"
    SPEC_ALLOW = "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
    WAIT_KILLABLE_RECV = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"


def _parse_uint(what: str, maximum: int, *, allow_digits: bool = False) -> Callable[[Any], int]:
    """Build a validator that accepts an integer from 0 to `maximum`, never a bool or float.

    With `allow_digits`, a string of decimal digits is accepted too: the Security Profiles
    Operator's v1beta1 API stores errnoRet as a string, and such profiles must move over.
    """

    def parse(value: Any) -> int:
        if allow_digits and isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(
                "invalid_integer",
                f"invalid {what} {quote(value)}: use a whole number from 0 to {maximum}",
            )
        if not 0 <= value <= maximum:
            raise invalid(
                "integer_out_of_range",
                f"{what} {value} is out of range: use a whole number from 0 to {maximum}",
            )
        return value

    return parse


def _check_syscall_name(value: Any) -> Any:
    if not isinstance(value, str) or not re.fullmatch(SYSCALL_NAME_PATTERN, value):
        raise invalid(
            "invalid_syscall_name",
            f"invalid syscall name {quote(value)}: use the kernel's name, in lower-case"
            ' letters, digits and underscores, such as "openat"',
        )
    return value


def _check_rule_names(names: Any) -> Any:
    if isinstance(names, (list, tuple)) and not names:
        raise invalid(
            "rule_without_names",
            "the rule names no syscall: a rule must name at least one syscall, so add names"
            " or delete the rule",
        )
    return reject_duplicates("syscall")(names)


ActionField = Annotated[Action, BeforeValidator(parse_member(Action, "action"))]
OperatorField = Annotated[Operator, BeforeValidator(parse_member(Operator, "operator"))]
ArchitectureField = Annotated[
    Architecture, BeforeValidator(parse_member(Architecture, "architecture"))
]
FlagField = Annotated[Flag, BeforeValidator(parse_member(Flag, "flag"))]
# NB: each Field comes before its BeforeValidator: pydantic leaves a constraint that
# follows a before-validator out of the JSON schema, and the CRDs need every one.
SyscallName = Annotated[
    str, Field(pattern=SYSCALL_NAME_PATTERN), BeforeValidator(_check_syscall_name)
]
ErrnoRet = Annotated[
    int,
    Field(ge=0, le=MAX_TRACE_DATA),
    BeforeValidator(_parse_uint("errnoRet", MAX_TRACE_DATA, allow_digits=True)),
]
ArgumentIndex = Annotated[
    int,
    Field(ge=0, le=MAX_ARGUMENT_INDEX),
    BeforeValidator(_parse_uint("argument index", MAX_ARGUMENT_INDEX)),
]
ArgumentValue = Annotated[
    int, Field(ge=0, le=MAX_UINT64), BeforeValidator(_parse_uint("argument value", MAX_UINT64))
]
Architectures = Annotated[
    tuple[ArchitectureField, ...],
    Field(json_schema_extra=LIST_TYPE_SET),
    BeforeValidator(reject_duplicates("architecture")),
]


def check_errno_ret(action: Action, errno_ret: int | None, field: str) -> None:
    """Raise when `errno_ret` cannot go with `action`, as runc and libseccomp define them.

    Only SCMP_ACT_ERRNO and SCMP_ACT_TRACE carry a return value; runc rejects errnoRet on
    any other action. For SCMP_ACT_ERRNO the value is the errno the call fails with, and
    the kernel caps it at MAX_ERRNO (4095). For SCMP_ACT_TRACE it is the 16-bit message
    handed to the tracer, 0 to 65535.
    """
    if errno_ret is None:
        return
    if action not in ACTIONS_WITH_ERRNO:
        raise invalid(
            "errno_without_errno_action",
            f"{field} {errno_ret} is set, but {action.value} returns no errno: remove {field},"
            " or use SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
        )
    if action is Action.ERRNO and errno_ret > MAX_ERRNO:
        raise invalid(
            "errno_out_of_range",
            f"{field} {errno_ret} is out of range for SCMP_ACT_ERRNO: use an errno from 0 to"
            f" {MAX_ERRNO}, because the kernel caps larger values at {MAX_ERRNO}",
        )


def errno_ret_rules(action_field: str, errno_field: str) -> list[JsonValue]:
    """Build the CEL rules that check `errno_field` against `action_field` in the API server.

    They are the rules of `check_errno_ret`, for the CRDs' `x-kubernetes-validations`.
    """
    with_errno = ", ".join(f"'{action.value}'" for action in sorted(ACTIONS_WITH_ERRNO))
    return [
        {
            "rule": f"!has(self.{errno_field}) || self.{action_field} in [{with_errno}]",
            "message": f"{errno_field} is set, but only SCMP_ACT_ERRNO and SCMP_ACT_TRACE"
            f" return an errno: remove {errno_field}, or use one of them as {action_field}",
            "fieldPath": f".{errno_field}",
        },
        {
            "rule": f"!has(self.{errno_field}) || self.{action_field} != '{Action.ERRNO.value}'"
            f" || self.{errno_field} <= {MAX_ERRNO}",
            "message": f"{errno_field} is out of range for SCMP_ACT_ERRNO: use an errno from 0"
            f" to {MAX_ERRNO}, because the kernel caps larger values at {MAX_ERRNO}",
            "fieldPath": f".{errno_field}",
        },
    ]


class SyscallArgument(Model):
    """Condition on one syscall argument: `args[index] op value` (MASKED_EQ: `& value == valueTwo`)."""

    index: ArgumentIndex
    """Index of the argument, from 0 to 5."""

    value: ArgumentValue
    """Value the argument is compared with."""

    value_two: ArgumentValue = 0
    """Value the masked argument is compared with, for SCMP_CMP_MASKED_EQ only."""

    op: OperatorField
    """Comparison operator."""


class SyscallRule(Model):
    """Action taken for the named syscalls, optionally only when every argument condition holds."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": errno_ret_rules("action", "errnoRet")}
    )

    # The names are a set, so they are kept sorted: equal rules compare and render equal.
    names: Annotated[
        tuple[SyscallName, ...],
        Field(min_length=1, json_schema_extra=LIST_TYPE_SET),
        BeforeValidator(_check_rule_names),
        AfterValidator(lambda names: tuple(sorted(names))),
    ]
    """Syscalls the rule applies to, by the kernel's names."""

    action: ActionField
    """Action taken when one of the syscalls is made and every argument condition holds."""

    errno_ret: ErrnoRet | None = None
    """Errno returned by SCMP_ACT_ERRNO, or message passed to the tracer by SCMP_ACT_TRACE."""

    args: tuple[SyscallArgument, ...] = ()
    """Argument conditions, all of which must hold for the rule to apply. When two conditions
    compare the same argument, runc and crun apply each condition as a rule of its own, so
    any one of them suffices."""

    @model_validator(mode="after")
    def _check(self) -> SyscallRule:
        check_errno_ret(self.action, self.errno_ret, "errnoRet")
        return self


class SeccompProfileSpec(Model):
    """Seccomp profile: the default action and the rules that override it for named syscalls."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": errno_ret_rules("defaultAction", "defaultErrnoRet")
        }
    )

    default_action: ActionField
    """Action taken for every syscall that no rule names."""

    default_errno_ret: ErrnoRet | None = None
    """Errno returned by a default action of SCMP_ACT_ERRNO (EPERM when unset)."""

    architectures: Architectures = ()
    """Architectures the filter accepts, in addition to the native one."""

    flags: Annotated[
        tuple[FlagField, ...],
        Field(json_schema_extra=LIST_TYPE_SET),
        BeforeValidator(reject_duplicates("flag")),
    ] = ()
    """Flags passed to seccomp(2) when the filter is installed."""

    syscalls: tuple[SyscallRule, ...] = ()
    """Rules that override the default action for named syscalls."""

    # OCI JSON has no such field, so the base must be merged in before rendering it.
    base_profile_name: ObjectName | None = None
    """Name of another SeccompProfile in the same namespace whose rules are merged into this one."""

    @model_validator(mode="after")
    def _check(self) -> SeccompProfileSpec:
        check_errno_ret(self.default_action, self.default_errno_ret, "defaultErrnoRet")
        _check_unconditional_duplicates(self.syscalls)
        return self


def _check_unconditional_duplicates(rules: Iterable[SyscallRule]) -> None:
    """Reject a name that more than one rule without argument conditions names.

    Conditional rules for the same syscall are normal (one per argument pattern), but two
    unconditional rules for one syscall either repeat each other or contradict each other,
    and libseccomp rejects a second rule with another action for the same syscall.
    """
    positions: dict[str, list[int]] = {}
    for position, rule in enumerate(rules):
        if rule.args:
            continue
        for name in rule.names:
            positions.setdefault(name, []).append(position)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if repeated:
        details = "; ".join(
            f"{quote(name)} in " + ", ".join(f"syscalls[{position}]" for position in where)
            for name, where in sorted(repeated.items())
        )
        raise invalid(
            "syscall_in_several_rules",
            f"syscalls named by more than one rule without args: {details}. Name each"
            " syscall in one unconditional rule",
        )


class ObjectMeta(Model):
    """The part of Kubernetes object metadata that a profile file carries."""

    name: ObjectName
    namespace: NamespaceName | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _drop_server_fields(cls, data: Any) -> Any:
        # Objects exported with `kubectl get -o yaml` carry fields that the API server sets
        # for one stored object. They say nothing about the profile, so they are dropped.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in SERVER_SET_METADATA}
        return data


SERVER_SET_METADATA = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
        "ownerReferences",
        "finalizers",
        "generateName",
    }
)


class ProfilePhase(StrEnum):
    """Summary of a SeccompProfile's state, shown by `kubectl get sprof`."""

    PENDING = "Pending"
    INSTALLED = "Installed"  # On every node that should have it.
    PARTIAL = "Partial"  # On some of those nodes.
    ERROR = "Error"  # Invalid, or failed on every node that should have it.
    TERMINATING = "Terminating"


class NodeProfileState(StrEnum):
    """State of a profile's file on one node."""

    PENDING = "Pending"
    INSTALLED = "Installed"
    ERROR = "Error"
    REMOVED = "Removed"


class ProfileConditionType(StrEnum):
    """Types of the conditions in a SeccompProfile's status."""

    VALID = "Valid"  # The spec passed every check and can be rendered for the nodes.
    INSTALLED = "Installed"  # Every node that should have the file has the current one.


SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"


class NodeProfileStatus(StatusModel):
    """Installation of the profile's file on one node."""

    state: NodeProfileState
    """State of the file on the node."""

    message: str = ""
    """Details of the state, such as the error that kept the file off the node."""

    observed_generation: ObservedGeneration | None = None
    """metadata.generation of the profile that the installed file was rendered from."""

    content_hash: Annotated[str, Field(pattern=SHA256_HEX_PATTERN)] | None = None
    """SHA-256 of the installed file's bytes, in lower-case hex."""

    last_transition_time: Timestamp | None = None
    """Time the state last changed."""


class SeccompProfileStatus(StatusModel):
    """Observed state of a SeccompProfile, written by the operator."""

    kopf: KopfState = None
    """Handler progress and the last handled spec, kept by the operator's framework (kopf)."""

    phase: ProfilePhase | None = None
    """Summary of the state: Pending, Installed, Partial, Error or Terminating."""

    localhost_profile: str | None = None
    """Value for a pod's `securityContext.seccompProfile.localhostProfile`."""

    syscall_count: Annotated[int, Field(ge=0)] | None = None
    """Number of syscall names that the profile allows."""

    nodes_installed: Annotated[int, Field(ge=0)] | None = None
    """Number of nodes that have the current file."""

    nodes_targeted: Annotated[int, Field(ge=0)] | None = None
    """Number of nodes that should have the file."""

    nodes: Annotated[str, Field(pattern=r"^[0-9]+/[0-9]+$")] | None = None
    """nodesInstalled/nodesTargeted as text, such as `2/3`, for `kubectl get`."""

    node_statuses: dict[NodeName, NodeProfileStatus] = Field(default_factory=dict)
    """State of the profile's file on each node, by node name."""

    observed_generation: ObservedGeneration | None = None
    """metadata.generation of the profile that this status describes."""

    conditions: Conditions = ()
    """Conditions of types Valid and Installed."""


# The node stores a profile as `<name>.json`, and file names are at most 255 bytes long
# (NAME_MAX on Linux), so a profile name is shorter than other object names.
MAX_PROFILE_NAME_LENGTH = 250


def _check_api_version(value: Any) -> Any:
    if value != API_VERSION:
        raise invalid(
            "unsupported_api_version",
            f"unsupported apiVersion {quote(value)}: use {API_VERSION}. A Security Profiles"
            " Operator SeccompProfile moves over with this change of apiVersion alone",
        )
    return value


def _check_kind(value: Any) -> Any:
    if value != KIND:
        raise invalid(
            "unsupported_kind", f"unsupported kind {quote(value)}: this file must hold a {KIND}"
        )
    return value


class SeccompProfile(Model):
    """The SeccompProfile custom resource (`seccomp-recorder.io/v1alpha1`)."""

    api_version: Annotated[
        Literal["seccomp-recorder.io/v1alpha1"], BeforeValidator(_check_api_version)
    ] = API_VERSION
    kind: Annotated[Literal["SeccompProfile"], BeforeValidator(_check_kind)] = KIND
    metadata: ObjectMeta
    spec: SeccompProfileSpec
    # Files never set the status; it is kept when read from an exported object.
    status: SeccompProfileStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _check_name_length(cls, metadata: ObjectMeta) -> ObjectMeta:
        check_name_length(
            "profile",
            MAX_PROFILE_NAME_LENGTH,
            "nodes store the profile as <name>.json and a file name has at most 255 bytes",
        )(metadata.name)
        return metadata
