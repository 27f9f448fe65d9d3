"""Building allow-list profiles from recorded syscall names, and merging profiles.

`build_allow_list` turns the names a recording saw into a profile; `union` merges the
profiles of several replicas of one workload; `apply_base_profile` merges a base profile
in, as `baseProfileName` requests. Profiles that disagree on anything but their rules and
architectures are never merged by guessing: the functions raise `ProfileError` instead.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from pydantic import ValidationError

from seccomp_recorder.models.errors import ProfileError, describe_validation_error, quote
from seccomp_recorder.models.profile import (
    ACTIONS_WITH_ERRNO,
    Action,
    Architecture,
    SeccompProfileSpec,
    SyscallArgument,
    SyscallRule,
)

_MODELS = (SeccompProfileSpec, SyscallRule)

# glibc 2.34 and later call clone3 first and fall back to clone only when clone3 fails
# with ENOSYS, so a profile that denies clone3 must make it fail with ENOSYS.
CLONE3 = "clone3"

# ENOSYS is 38 on every architecture here except MIPS, whose kernel errno table numbers
# it 89 (arch/mips/include/uapi/asm/errno.h).
_ENOSYS_GENERIC = 38
_ENOSYS_MIPS = 89
_MIPS_ARCHITECTURES = frozenset(
    {
        Architecture.MIPS,
        Architecture.MIPSEL,
        Architecture.MIPS64,
        Architecture.MIPSEL64,
        Architecture.MIPS64N32,
        Architecture.MIPSEL64N32,
    }
)

# Precedence of actions when one seccomp filter returns several, as the kernel orders
# them (SECCOMP_RET_* in include/uapi/linux/seccomp.h): a higher value permits more.
# SCMP_ACT_KILL is libseccomp's name for SCMP_ACT_KILL_THREAD.
PERMISSIVENESS = {
    Action.KILL_PROCESS: 0,
    Action.KILL: 1,
    Action.KILL_THREAD: 1,
    Action.TRAP: 2,
    Action.ERRNO: 3,
    Action.NOTIFY: 4,
    Action.TRACE: 5,
    Action.LOG: 6,
    Action.ALLOW: 7,
}


def enosys_errno(architectures: Iterable[Architecture]) -> int:
    """Return the value of ENOSYS on `architectures` (this machine's when there are none).

    Raises ProfileError when the architectures disagree, because one profile carries one
    errnoRet for all of them.
    """
    values = {
        _ENOSYS_MIPS if architecture in _MIPS_ARCHITECTURES else _ENOSYS_GENERIC
        for architecture in architectures
    }
    if not values:
        return errno.ENOSYS
    if len(values) > 1:
        raise ProfileError(
            "architectures: ENOSYS is 89 on MIPS but 38 elsewhere, so one profile cannot"
            " return ENOSYS on all of these architectures: build one profile for the MIPS"
            " architectures and another for the rest"
        )
    return values.pop()


def build_allow_list(
    names: Iterable[str],
    *,
    architectures: Sequence[Architecture | str],
    default_action: Action = Action.ERRNO,
    default_errno_ret: int | None = errno.EPERM,
) -> SeccompProfileSpec:
    """Build a profile that allows exactly `names` and applies `default_action` to the rest.

    `default_errno_ret` is written only when `default_action` returns an errno
    (SCMP_ACT_ERRNO or SCMP_ACT_TRACE) and is dropped for the other actions. When clone3
    is not among `names` and the default action denies, the profile gets a rule that fails
    clone3 with ENOSYS, so glibc falls back to clone instead of failing to create threads.
    With SCMP_ACT_LOG as default, which permits every call, no such rule is added.

    Raises ProfileError for an empty `names`, an invalid name or architecture, or a
    default action that allows everything.
    """
    allowed = sorted(set(names))
    if not allowed:
        raise ProfileError(
            "the recording contains no syscall names, and a profile that allows nothing would"
            " stop the workload at its first syscall: record the workload again"
        )
    if default_action is Action.ALLOW:
        raise ProfileError(
            "default action SCMP_ACT_ALLOW would allow every syscall, so the allow list would"
            " have no effect: use SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS or SCMP_ACT_LOG"
        )
    try:
        spec = SeccompProfileSpec.model_validate(
            {
                "default_action": default_action,
                "default_errno_ret": (
                    default_errno_ret if default_action in ACTIONS_WITH_ERRNO else None
                ),
                "architectures": tuple(architectures),
                "syscalls": ({"names": allowed, "action": Action.ALLOW},),
            }
        )
    except ValidationError as error:
        raise ProfileError(*describe_validation_error(error, _MODELS)) from error
    if CLONE3 in allowed or default_action is Action.LOG:
        return spec
    enosys = SyscallRule(
        names=(CLONE3,), action=Action.ERRNO, errno_ret=enosys_errno(spec.architectures)
    )
    return spec.model_copy(update={"syscalls": (*spec.syscalls, enosys)})


def allowed_syscalls(spec: SeccompProfileSpec) -> frozenset[str]:
    """Return the names that `spec` allows whatever their arguments are."""
    return frozenset(
        name
        for rule in spec.syscalls
        if rule.action is Action.ALLOW and not rule.args
        for name in rule.names
    )


class _Outcome(NamedTuple):
    """Action and errno that an unconditional rule applies to a syscall."""

    action: Action
    errno_ret: int | None


class _ConditionalKey(NamedTuple):
    action: Action
    errno_ret: int | None
    args: tuple[SyscallArgument, ...]


def union(specs: Iterable[SeccompProfileSpec]) -> SeccompProfileSpec:
    """Merge `specs` into one profile that permits every call that any of them permits.

    Used to merge the profiles recorded from several replicas of one workload. The specs
    must agree on the default action, its errno, the flags and the base profile. The
    result lists every architecture of every spec, in order of first appearance.

    A syscall with unconditional rules of different actions gets the most permissive one,
    in the kernel's order of precedence: so clone3, allowed by one replica and denied with
    ENOSYS in another, ends up allowed. Two different errnos for one syscall, or a syscall
    with argument conditions in one spec and an unconditional rule in another, cannot be
    merged without guessing and raise ProfileError.

    The rules of the result come in a canonical order: unconditional rules from the most
    to the least permissive action, then rules with argument conditions.
    """
    specs = list(specs)
    if not specs:
        raise ValueError("union() needs at least one profile spec")
    first = specs[0]
    _check_same_settings(specs)

    architectures: list[Architecture] = []
    outcomes: dict[str, set[_Outcome]] = {}
    conditional: dict[_ConditionalKey, set[str]] = {}
    for spec in specs:
        architectures += [arch for arch in spec.architectures if arch not in architectures]
        for rule in spec.syscalls:
            if rule.args:
                key = _ConditionalKey(rule.action, rule.errno_ret, rule.args)
                conditional.setdefault(key, set()).update(rule.names)
            else:
                for name in rule.names:
                    outcomes.setdefault(name, set()).add(_Outcome(rule.action, rule.errno_ret))

    conditional_names = set().union(*conditional.values())
    mixed = sorted(conditional_names & outcomes.keys())
    if mixed:
        raise ProfileError(
            f"syscalls {', '.join(quote(name) for name in mixed)} have argument conditions in"
            " one profile and an unconditional rule in another: merge these profiles by hand"
        )

    chosen: dict[_Outcome, set[str]] = {}
    for name, candidates in outcomes.items():
        chosen.setdefault(_most_permissive(name, candidates), set()).add(name)
    rules = [
        SyscallRule(names=tuple(names), action=outcome.action, errno_ret=outcome.errno_ret)
        for outcome, names in sorted(chosen.items(), key=lambda item: _outcome_order(item[0]))
    ]
    rules += [
        SyscallRule(names=tuple(names), action=key.action, errno_ret=key.errno_ret, args=key.args)
        for key, names in sorted(conditional.items(), key=lambda item: _conditional_order(item))
    ]
    return SeccompProfileSpec(
        default_action=first.default_action,
        default_errno_ret=_effective_default_errno(specs),
        architectures=tuple(architectures),
        flags=first.flags,
        syscalls=tuple(rules),
        base_profile_name=first.base_profile_name,
    )


def apply_base_profile(spec: SeccompProfileSpec, base: SeccompProfileSpec) -> SeccompProfileSpec:
    """Merge the rules of `base` into `spec` and clear `spec`'s baseProfileName.

    This is what `baseProfileName` means: the result permits what either permits, with the
    same rules of merging as `union`. Raises ProfileError when `base` names a base of its
    own, because chains of bases must be resolved from the innermost one outwards.
    """
    if base.base_profile_name is not None:
        raise ProfileError(
            f"the base profile is itself based on {quote(base.base_profile_name)}: merge that"
            " profile into the base first"
        )
    merged = union([spec.model_copy(update={"base_profile_name": None}), base])
    return merged


def _check_same_settings(specs: Sequence[SeccompProfileSpec]) -> None:
    first = specs[0]
    problems = []
    for position, spec in enumerate(specs[1:], start=1):
        if spec.default_action is not first.default_action:
            problems.append(
                f"profile {position} has defaultAction {spec.default_action.value}, but"
                f" profile 0 has {first.default_action.value}"
            )
        elif _default_errno(spec) != _default_errno(first):
            problems.append(
                f"profile {position} has defaultErrnoRet {_default_errno(spec)}, but"
                f" profile 0 has {_default_errno(first)}"
            )
        if set(spec.flags) != set(first.flags):
            problems.append(
                f"profile {position} has flags [{', '.join(spec.flags)}], but"
                f" profile 0 has [{', '.join(first.flags)}]"
            )
        if spec.base_profile_name != first.base_profile_name:
            problems.append(
                f"profile {position} has baseProfileName {quote(spec.base_profile_name)}, but"
                f" profile 0 has {quote(first.base_profile_name)}"
            )
    if problems:
        raise ProfileError(
            *(f"{problem}: profiles merge only when these settings agree" for problem in problems)
        )


def _default_errno(spec: SeccompProfileSpec) -> int | None:
    """Return the errno the default action returns; runc uses EPERM when none is set."""
    if spec.default_action not in ACTIONS_WITH_ERRNO:
        return None
    return errno.EPERM if spec.default_errno_ret is None else spec.default_errno_ret


def _effective_default_errno(specs: Sequence[SeccompProfileSpec]) -> int | None:
    """Keep defaultErrnoRet unset only when every spec leaves it unset."""
    if all(spec.default_errno_ret is None for spec in specs):
        return None
    return _default_errno(specs[0])


def _most_permissive(name: str, candidates: set[_Outcome]) -> _Outcome:
    best = max(PERMISSIVENESS[candidate.action] for candidate in candidates)
    top = {candidate for candidate in candidates if PERMISSIVENESS[candidate.action] == best}
    if len(top) > 1:
        described = " and ".join(sorted(_describe_outcome(outcome) for outcome in top))
        raise ProfileError(
            f"syscall {quote(name)} has {described} in different profiles: make the profiles"
            " agree on one errno for it before merging"
        )
    return top.pop()


def _describe_outcome(outcome: _Outcome) -> str:
    if outcome.errno_ret is None:
        return outcome.action.value
    return f"{outcome.action.value} with errnoRet {outcome.errno_ret}"


def _outcome_order(outcome: _Outcome) -> tuple[int, int, str]:
    errno_ret = -1 if outcome.errno_ret is None else outcome.errno_ret
    return (-PERMISSIVENESS[outcome.action], errno_ret, outcome.action.value)


def _conditional_order(item: tuple[_ConditionalKey, set[str]]) -> tuple[object, ...]:
    key, names = item
    args = [(arg.index, arg.op.value, arg.value, arg.value_two) for arg in key.args]
    return (sorted(names), key.action.value, -1 if key.errno_ret is None else key.errno_ret, args)
