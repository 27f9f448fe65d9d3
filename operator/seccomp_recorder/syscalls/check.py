"""Checks of a valid profile spec against the syscall tables and what runtimes accept.

The models reject what is malformed; these checks find what parses but would not work on
a node: names that no listed architecture has, actions runc cannot load from a
SeccompProfile, and settings that break common programs. `find_problems` collects every
problem instead of stopping at the first.

A syscall name is checked against the architectures that the profile lists, or against
the native architecture when it lists none. A name is an error only when none of those
architectures has it. A name known on some listed architectures but not on others is
normal: a profile for x86_64 also lists x86 and x32, and `socketcall` exists on x86 alone.
libseccomp's seccomp_rule_add() applies such a rule where the call exists and skips it
elsewhere (checked with libseccomp 2.5.4, the version in Debian 12). runc ignores names
that libseccomp does not have at all, so a misspelt name would silently allow nothing.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from seccomp_recorder.models.algebra import enosys_errno
from seccomp_recorder.models.errors import ProfileError, quote
from seccomp_recorder.models.profile import Action, Architecture, Flag, SeccompProfileSpec
from seccomp_recorder.syscalls import tables


class Severity(StrEnum):
    """Severity of a problem: an error makes the profile unusable, a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """A problem found in a profile spec, at `path` (such as `syscalls[2].names`)."""

    path: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.path}: {prefix}{self.message}"


def find_problems(spec: SeccompProfileSpec, *, native: Architecture | None = None) -> list[Problem]:
    """Return every problem found in `spec`, errors and warnings, in document order.

    `native` is the architecture that names are checked against when `spec` lists none
    (default: this machine's, see `tables.native_architecture`).
    """
    problems = _check_names(spec, native)
    problems += _check_actions(spec)
    problems += _check_flags(spec)
    problems += _check_argument_indexes(spec)
    problems += _check_clone3(spec)
    return sorted(problems, key=lambda problem: _document_order(problem.path))


def errors(problems: Sequence[Problem]) -> list[Problem]:
    """Return the problems that make a profile unusable."""
    return [problem for problem in problems if problem.severity is Severity.ERROR]


def _check_names(spec: SeccompProfileSpec, native: Architecture | None) -> list[Problem]:
    architectures = spec.architectures or (native or tables.native_architecture(),)
    known = frozenset().union(*(tables.syscall_names(arch) for arch in architectures))
    where = (
        architectures[0].value
        if len(architectures) == 1
        else "any of " + ", ".join(arch.value for arch in architectures)
    )
    problems = []
    for rule_index, rule in enumerate(spec.syscalls):
        # The path stops at the list, because the models sort names and an index into the
        # sorted list would not match the file; the message names the syscall instead.
        for name in rule.names:
            if name in known:
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {quote(close[0])}?)" if close else ""
            problems.append(
                Problem(
                    f"syscalls[{rule_index}].names",
                    f"syscall {quote(name)} is not known on {where}{hint}: correct the name or"
                    " remove it, because runtimes skip names an architecture does not have",
                )
            )
    return problems


def _check_actions(spec: SeccompProfileSpec) -> list[Problem]:
    # runc fails to create the container ("seccomp listenerPath is not set") when any
    # action is SCMP_ACT_NOTIFY and no listener is configured, and a SeccompProfile has no
    # field for one. runc also rejects SCMP_ACT_NOTIFY as the default action outright.
    fix = "use another action, because a SeccompProfile cannot name a seccomp agent to notify"
    problems = []
    if spec.default_action is Action.NOTIFY:
        problems.append(Problem("defaultAction", f"SCMP_ACT_NOTIFY cannot be loaded: {fix}"))
    for index, rule in enumerate(spec.syscalls):
        if rule.action is Action.NOTIFY:
            problems.append(
                Problem(f"syscalls[{index}].action", f"SCMP_ACT_NOTIFY cannot be loaded: {fix}")
            )
    return problems


def _check_flags(spec: SeccompProfileSpec) -> list[Problem]:
    problems = []
    for index, flag in enumerate(spec.flags):
        if flag is Flag.WAIT_KILLABLE_RECV:
            problems.append(
                Problem(
                    f"flags[{index}]",
                    f"{flag.value} only changes how SCMP_ACT_NOTIFY waits, and runc does not"
                    " implement it and rejects the profile: remove the flag",
                    Severity.WARNING,
                )
            )
    return problems


def _check_argument_indexes(spec: SeccompProfileSpec) -> list[Problem]:
    """Warn about rules whose conditions compare one argument more than once.

    runc, crun and `seccomp-recorder run` add each condition of such a rule as a rule of
    its own, because libseccomp rejects the rule whole. The rule then applies when any
    one condition holds, not when all do, which may permit more than its author meant.
    """
    problems = []
    for rule_index, rule in enumerate(spec.syscalls):
        indexes = [argument.index for argument in rule.args]
        repeated = sorted({index for index in indexes if indexes.count(index) > 1})
        if not repeated:
            continue
        listed = ", ".join(str(index) for index in repeated)
        problems.append(
            Problem(
                f"syscalls[{rule_index}].args",
                f"more than one condition compares argument {listed}, so runtimes apply each"
                " condition as a separate rule, and the rule applies when any one condition"
                " holds, not all: write one rule per condition to make that explicit",
                Severity.WARNING,
            )
        )
    return problems


def _check_clone3(spec: SeccompProfileSpec) -> list[Problem]:
    """Warn when the default action denies clone3 in a way other than failing with ENOSYS.

    glibc 2.34 and later try clone3 first and fall back to clone only when clone3 fails
    with ENOSYS, so denying clone3 with EPERM (or killing the caller) breaks every thread
    creation. SCMP_ACT_TRACE with no tracer attached fails the call with ENOSYS, so it is
    left alone, as are the defaults that permit the call.
    """
    if spec.default_action in _CLONE3_SAFE_DEFAULTS:
        return []
    if any("clone3" in rule.names and not rule.args for rule in spec.syscalls):
        return []
    try:
        enosys = enosys_errno(spec.architectures)
    except ProfileError:
        enosys = errno.ENOSYS  # Mixed MIPS and other architectures: no single right value.
    if spec.default_action is Action.ERRNO:
        default_errno = errno.EPERM if spec.default_errno_ret is None else spec.default_errno_ret
        if default_errno == enosys:
            return []
        outcome = f"denied with errno {default_errno}"
    else:
        outcome = f"denied with {spec.default_action.value}"
    return [
        Problem(
            "syscalls",
            f"clone3 is {outcome} by the default action, but glibc 2.34 and later fall back"
            " to clone only when clone3 fails with ENOSYS, so creating a thread fails: add a"
            f" rule with names [clone3], action SCMP_ACT_ERRNO and errnoRet {enosys} (ENOSYS),"
            " or allow clone3",
            Severity.WARNING,
        )
    ]


_CLONE3_SAFE_DEFAULTS = frozenset({Action.ALLOW, Action.LOG, Action.TRACE})


def _document_order(path: str) -> tuple[object, ...]:
    """Sort key that puts `syscalls[10]` after `syscalls[9]` and top-level fields in spec order."""
    fields = ["defaultAction", "defaultErrnoRet", "architectures", "flags", "syscalls"]
    head, _, rest = path.partition("[")
    numbers = [int(part.split("]")[0]) for part in rest.split("[") if part] if rest else []
    rank = fields.index(head) if head in fields else len(fields)
    return (rank, numbers, path)
