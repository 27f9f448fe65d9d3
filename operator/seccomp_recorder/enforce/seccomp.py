"""Compile a SeccompProfileSpec into a libseccomp filter and load it, as runc does.

The translation follows runc's, which is also built on libseccomp. SCMP_ACT_ERRNO
without an errnoRet returns EPERM. Names libseccomp does not know are resolved through
this project's syscall tables, or else skipped with a warning. A call made through an
architecture the profile does not list gets libseccomp's bad-architecture action.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import pyseccomp

from seccomp_recorder.models.profile import (
    Action,
    Architecture,
    Flag,
    Operator,
    SeccompProfileSpec,
    SyscallArgument,
    SyscallRule,
)
from seccomp_recorder.syscalls import tables

logger = logging.getLogger(__name__)

# The value seccomp_syscall_resolve_name returns for an unknown name (__NR_SCMP_ERROR).
_UNRESOLVED = -1
# The kernel rejects a seccomp filter of more classic BPF instructions than this with
# EINVAL (BPF_MAXINSNS, checked by seccomp_prepare_filter in kernel/seccomp.c).
BPF_MAXINSNS = 4096
# Size in bytes of one classic BPF instruction, struct sock_filter.
_INSTRUCTION_SIZE = 8

_ARCHITECTURES: dict[Architecture, int] = {
    Architecture.X86: pyseccomp.Arch.X86,
    Architecture.X86_64: pyseccomp.Arch.X86_64,
    Architecture.X32: pyseccomp.Arch.X32,
    Architecture.ARM: pyseccomp.Arch.ARM,
    Architecture.AARCH64: pyseccomp.Arch.AARCH64,
    Architecture.MIPS: pyseccomp.Arch.MIPS,
    Architecture.MIPS64: pyseccomp.Arch.MIPS64,
    Architecture.MIPS64N32: pyseccomp.Arch.MIPS64N32,
    Architecture.MIPSEL: pyseccomp.Arch.MIPSEL,
    Architecture.MIPSEL64: pyseccomp.Arch.MIPSEL64,
    Architecture.MIPSEL64N32: pyseccomp.Arch.MIPSEL64N32,
    Architecture.PPC: pyseccomp.Arch.PPC,
    Architecture.PPC64: pyseccomp.Arch.PPC64,
    Architecture.PPC64LE: pyseccomp.Arch.PPC64LE,
    Architecture.RISCV64: pyseccomp.Arch.RISCV64,
    Architecture.S390: pyseccomp.Arch.S390,
    Architecture.S390X: pyseccomp.Arch.S390X,
}

_OPERATORS: dict[Operator, int] = {
    Operator.NE: pyseccomp.NE,
    Operator.LT: pyseccomp.LT,
    Operator.LE: pyseccomp.LE,
    Operator.EQ: pyseccomp.EQ,
    Operator.GE: pyseccomp.GE,
    Operator.GT: pyseccomp.GT,
    Operator.MASKED_EQ: pyseccomp.MASKED_EQ,
}

_FLAG_ATTRIBUTES: dict[Flag, int] = {
    Flag.TSYNC: pyseccomp.Attr.CTL_TSYNC,
    Flag.LOG: pyseccomp.Attr.CTL_LOG,
    Flag.SPEC_ALLOW: pyseccomp.Attr.CTL_SSB,
}


class EnforcementError(Exception):
    """A profile cannot be turned into a seccomp filter on this machine."""


@dataclass
class CompiledFilter:
    """A libseccomp filter ready to load, and the names it had to leave out."""

    filter: Any
    skipped_names: list[str] = field(default_factory=list)

    def instruction_count(self) -> int:
        """Generate the filter's BPF program, as loading it would, and return its length.

        Raises OSError when libseccomp cannot generate the program.
        """
        with tempfile.TemporaryFile() as program:
            self.filter.export_bpf(program)
            return program.seek(0, os.SEEK_END) // _INSTRUCTION_SIZE

    def load(self) -> None:
        """Install the filter on the calling thread; it is inherited across fork and execve."""
        try:
            self.filter.load()
        except OSError as error:
            message = f"installing the seccomp filter failed: {error}"
            if error.errno == errno.ECANCELED:
                message += f": {self._describe_rejection()}"
            raise EnforcementError(message) from error

    def _describe_rejection(self) -> str:
        # libseccomp 2.5 reports the kernel's errors as ECANCELED (unless the filter sets
        # SCMP_FLTATR_API_SYSRAWRC), so the reason is lost. The usual one is a program
        # longer than BPF_MAXINSNS, which this function checks.
        try:
            count = self.instruction_count()
        except OSError:
            count = 0
        if count > BPF_MAXINSNS:
            return describe_oversized_filter(count)
        return "the kernel rejected the filter (libseccomp reports its errors as ECANCELED)"


def describe_oversized_filter(count: int) -> str:
    """Return the explanation and fix for a filter of `count` instructions over BPF_MAXINSNS."""
    return (
        f"the compiled filter has {count} BPF instructions, more than the kernel's limit of"
        f" {BPF_MAXINSNS} (BPF_MAXINSNS), so the kernel rejects it: use fewer rules with"
        " argument conditions, for example one rule without conditions for each syscall"
    )


def action_value(action: Action, errno_ret: int | None) -> int:
    """Return libseccomp's action value for an OCI action and its errnoRet."""
    if action is Action.ERRNO:
        return int(pyseccomp.ERRNO(errno.EPERM if errno_ret is None else errno_ret))
    if action is Action.TRACE:
        return int(pyseccomp.TRACE(errno.EPERM if errno_ret is None else errno_ret))
    simple = {
        Action.KILL: pyseccomp.KILL,
        Action.KILL_THREAD: pyseccomp.KILL_THREAD,
        Action.KILL_PROCESS: pyseccomp.KILL_PROCESS,
        Action.TRAP: pyseccomp.TRAP,
        Action.ALLOW: pyseccomp.ALLOW,
        Action.LOG: pyseccomp.LOG,
    }
    if action not in simple:
        raise EnforcementError(
            f"action {action} cannot be enforced by `seccomp-recorder run`: it needs a "
            "seccomp agent listening for notifications; use another action"
        )
    return int(simple[action])


def _syscall_number(name: str, native: Architecture) -> int | None:
    """Resolve `name` the way libseccomp would, falling back to this project's tables.

    libseccomp 2.5.4 predates syscalls such as cachestat or mseal; for those the
    native number from the tables is used, which libseccomp accepts as-is.
    """
    number = int(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name))
    if number != _UNRESOLVED:
        return number
    return tables.syscall_number(native, name)


def condition_groups(rule: SyscallRule) -> list[list[SyscallArgument]]:
    """Return the argument conditions of `rule` grouped into the libseccomp rules to add.

    All conditions go into one rule, which applies when every one holds, unless two of
    them compare the same argument. libseccomp rejects such a rule with EINVAL, so runc
    (libcontainer/seccomp) and crun then add each condition as a rule of its own, and the
    rule applies when any one condition holds. This function does the same.
    """
    indexes = [argument.index for argument in rule.args]
    if len(set(indexes)) == len(indexes):
        return [list(rule.args)]
    return [[argument] for argument in rule.args]


def _add_rule(compiled: CompiledFilter, rule: SyscallRule, native: Architecture) -> None:
    action = action_value(rule.action, rule.errno_ret)
    groups = [
        [
            pyseccomp.Arg(
                argument.index, _OPERATORS[argument.op], argument.value, argument.value_two
            )
            for argument in group
        ]
        for group in condition_groups(rule)
    ]
    for name in rule.names:
        number = _syscall_number(name, native)
        if number is None:
            compiled.skipped_names.append(name)
            continue
        for arguments in groups:
            try:
                compiled.filter.add_rule(action, number, *arguments)
            except OSError as error:
                if error.errno == errno.EACCES:
                    # libseccomp rejects a rule whose action equals the default action.
                    break
                raise EnforcementError(
                    f"adding the rule for syscall {name!r} ({rule.action}) failed: {error}"
                ) from error


def compile_filter(spec: SeccompProfileSpec, *, log_skipped: bool = True) -> CompiledFilter:
    """Build (without loading) the libseccomp filter for `spec`.

    Names unknown on this machine are left out, and logged as a warning unless
    `log_skipped` is false. Raises EnforcementError for what libseccomp cannot express
    on this machine: a base profile still to merge, a notify action, or an architecture
    libseccomp does not know.
    """
    if spec.base_profile_name is not None:
        raise EnforcementError(
            f"the profile names base profile {spec.base_profile_name!r}: merge the base in "
            "first with `seccomp-recorder convert --base-profile FILE`"
        )
    native = tables.native_architecture()
    try:
        default = action_value(spec.default_action, spec.default_errno_ret)
        handle = pyseccomp.SyscallFilter(default)
    except OSError as error:
        raise EnforcementError(f"creating a seccomp filter failed: {error}") from error
    compiled = CompiledFilter(handle)

    for architecture in spec.architectures:
        if architecture not in _ARCHITECTURES:
            raise EnforcementError(
                f"architecture {architecture} is not supported by this machine's libseccomp: "
                "remove it from the profile's architectures"
            )
        value = _ARCHITECTURES[architecture]
        if value == pyseccomp.system_arch():
            continue
        try:
            handle.add_arch(value)
        except OSError as error:
            if error.errno != errno.EEXIST:
                raise EnforcementError(f"adding architecture {architecture} failed: {error}")

    for flag in spec.flags:
        attribute = _FLAG_ATTRIBUTES.get(flag)
        if attribute is None:
            logger.warning("flag %s is not supported by libseccomp and is ignored", flag)
            continue
        handle.set_attr(attribute, 1)

    for rule in spec.syscalls:
        _add_rule(compiled, rule, native)
    if compiled.skipped_names and log_skipped:
        logger.warning(
            "syscalls unknown on %s are left out of the filter and get the default action: %s",
            native,
            ", ".join(sorted(set(compiled.skipped_names))),
        )
    return compiled
