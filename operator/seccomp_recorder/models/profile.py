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
from collections import Counter
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from seccomp_recorder.models.errors import invalid, quote

API_GROUP: Final = "seccomp-recorder.io"
API_VERSION: Final = "seccomp-recorder.io/v1alpha1"
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
# RFC 1123 names, as Kubernetes requires for object names and namespaces.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


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


EnumT = TypeVar("EnumT", bound=StrEnum)


def _parse_member(enum_type: type[EnumT], what: str) -> Callable[[Any], EnumT]:
    """Build a validator that converts a string to `enum_type` and lists the choices if it fails."""

    def parse(value: Any) -> EnumT:
        if isinstance(value, enum_type):
            return value
        if isinstance(value, str):
            try:
                return enum_type(value)
            except ValueError:
                pass
        choices = ", ".join(enum_type)
        raise invalid(f"invalid_{what}", f"invalid {what} {quote(value)}: use one of {choices}")

    return parse


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


def _check_k8s_name(what: str, pattern: str, max_length: int) -> Callable[[Any], Any]:
    allowed = "'-' or '.'" if "\\." in pattern else "'-'"

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) <= max_length and re.fullmatch(pattern, value):
            return value
        raise invalid(
            "invalid_kubernetes_name",
            f"invalid {what} {quote(value)}: use at most {max_length} lower-case letters,"
            f" digits and {allowed}, starting and ending with a letter or digit",
        )

    return check


def _check_rule_names(names: Any) -> Any:
    if isinstance(names, (list, tuple)) and not names:
        raise invalid(
            "rule_without_names",
            "the rule names no syscall: a rule must name at least one syscall, so add names"
            " or delete the rule",
        )
    return _reject_duplicates("syscall")(names)


def _reject_duplicates(what: str) -> Callable[[Any], Any]:
    def check(values: Any) -> Any:
        if not isinstance(values, (list, tuple)):
            return values
        counts = Counter(value for value in values if isinstance(value, str))
        duplicates = [value for value, count in counts.items() if count > 1]
        if duplicates:
            listed = ", ".join(quote(value) for value in duplicates)
            raise invalid(
                "duplicate_entries", f"{what} {listed} listed more than once: list each once"
            )
        return values

    return check


ActionField = Annotated[Action, BeforeValidator(_parse_member(Action, "action"))]
OperatorField = Annotated[Operator, BeforeValidator(_parse_member(Operator, "operator"))]
ArchitectureField = Annotated[
    Architecture, BeforeValidator(_parse_member(Architecture, "architecture"))
]
FlagField = Annotated[Flag, BeforeValidator(_parse_member(Flag, "flag"))]
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
ObjectName = Annotated[
    str,
    Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN),
    BeforeValidator(_check_k8s_name("name", DNS_SUBDOMAIN_PATTERN, 253)),
]
NamespaceName = Annotated[
    str,
    Field(max_length=63, pattern=DNS_LABEL_PATTERN),
    BeforeValidator(_check_k8s_name("namespace", DNS_LABEL_PATTERN, 63)),
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


class _Model(BaseModel):
    """Base of every model here: camelCase aliases, names accepted too, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )


class SyscallArgument(_Model):
    """Condition on one syscall argument: `args[index] op value` (MASKED_EQ: `& value == valueTwo`)."""

    index: ArgumentIndex
    value: ArgumentValue
    value_two: ArgumentValue = 0
    op: OperatorField


class SyscallRule(_Model):
    """Action taken for the named syscalls, optionally only when every argument condition holds."""

    # The names are a set, so they are kept sorted: equal rules compare and render equal.
    names: Annotated[
        tuple[SyscallName, ...],
        Field(min_length=1),
        BeforeValidator(_check_rule_names),
        AfterValidator(lambda names: tuple(sorted(names))),
    ]
    action: ActionField
    errno_ret: ErrnoRet | None = None
    args: tuple[SyscallArgument, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> SyscallRule:
        check_errno_ret(self.action, self.errno_ret, "errnoRet")
        return self


class SeccompProfileSpec(_Model):
    """Seccomp profile: the default action and the rules that override it for named syscalls."""

    default_action: ActionField
    default_errno_ret: ErrnoRet | None = None
    architectures: Annotated[
        tuple[ArchitectureField, ...], BeforeValidator(_reject_duplicates("architecture"))
    ] = ()
    flags: Annotated[tuple[FlagField, ...], BeforeValidator(_reject_duplicates("flag"))] = ()
    syscalls: tuple[SyscallRule, ...] = ()
    # Name of another SeccompProfile in the same namespace whose rules are merged into this
    # one. OCI JSON has no such field, so the base must be merged in before rendering it.
    base_profile_name: ObjectName | None = None

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


class ObjectMeta(_Model):
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


class SeccompProfile(_Model):
    """The SeccompProfile custom resource (`seccomp-recorder.io/v1alpha1`)."""

    api_version: Annotated[
        Literal["seccomp-recorder.io/v1alpha1"], BeforeValidator(_check_api_version)
    ] = API_VERSION
    kind: Annotated[Literal["SeccompProfile"], BeforeValidator(_check_kind)] = KIND
    metadata: ObjectMeta
    spec: SeccompProfileSpec

    @model_validator(mode="before")
    @classmethod
    def _drop_status(cls, data: Any) -> Any:
        # TODO: model the status and keep it, once the operator writes one; until then a
        # status read from an exported object is dropped, because a file never sets it.
        if isinstance(data, dict) and "status" in data:
            return {key: value for key, value in data.items() if key != "status"}
        return data
