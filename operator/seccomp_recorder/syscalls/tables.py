"""Syscall name and number tables per seccomp architecture, from the `system-calls` package.

The package's tables are generated from the kernel sources and include calls newer than the
libseccomp of a distribution, so recorded numbers are named with current names. A number
with no name in the table is returned as None, never given a made-up name.

Numbers are the ones the kernel reports in `seccomp_data.nr` and to the raw_syscalls
tracepoints: x32 numbers carry the x32 bit (0x40000000), MIPS numbers carry their ABI's
offset (4000, 5000 or 6000), and the ARM-private calls start at 0x0f0001.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from functools import cache
from typing import Any

import system_calls

from seccomp_recorder.models.profile import Architecture

# OCI architecture -> table name in the `system-calls` package. Big- and little-endian
# variants of one ABI share a table, because endianness does not change syscall numbers.
TABLE_NAMES: Mapping[Architecture, str] = {
    Architecture.X86_64: "x86_64",
    Architecture.X86: "i386",
    Architecture.X32: "x32",
    Architecture.AARCH64: "arm64",
    Architecture.ARM: "arm",
    Architecture.MIPS: "mipso32",
    Architecture.MIPSEL: "mipso32",
    Architecture.MIPS64: "mips64",
    Architecture.MIPSEL64: "mips64",
    Architecture.MIPS64N32: "mips64n32",
    Architecture.MIPSEL64N32: "mips64n32",
    Architecture.PPC: "powerpc",
    Architecture.PPC64: "powerpc64",
    Architecture.PPC64LE: "powerpc64",
    Architecture.RISCV64: "riscv64",
    Architecture.S390: "s390",
    Architecture.S390X: "s390x",
    Architecture.LOONGARCH64: "loongarch64",
}

# Architectures whose processes a kernel of the key architecture also runs, so a filter
# for that kernel must cover them too. This is the set that containerd and Docker put
# in their default profiles.
COMPANION_ARCHITECTURES: Mapping[Architecture, tuple[Architecture, ...]] = {
    Architecture.X86_64: (Architecture.X86, Architecture.X32),
    Architecture.AARCH64: (Architecture.ARM,),
    Architecture.MIPS64: (Architecture.MIPS, Architecture.MIPS64N32),
    Architecture.MIPS64N32: (Architecture.MIPS, Architecture.MIPS64),
    Architecture.MIPSEL64: (Architecture.MIPSEL, Architecture.MIPSEL64N32),
    Architecture.MIPSEL64N32: (Architecture.MIPSEL, Architecture.MIPSEL64),
    Architecture.S390X: (Architecture.S390,),
}

# `uname -m` -> OCI architecture, for machines whose name does not depend on endianness.
_MACHINES: Mapping[str, Architecture] = {
    "x86_64": Architecture.X86_64,
    "amd64": Architecture.X86_64,
    "i386": Architecture.X86,
    "i486": Architecture.X86,
    "i586": Architecture.X86,
    "i686": Architecture.X86,
    "aarch64": Architecture.AARCH64,
    "arm64": Architecture.AARCH64,
    "ppc": Architecture.PPC,
    "ppc64": Architecture.PPC64,
    "ppc64le": Architecture.PPC64LE,
    "riscv64": Architecture.RISCV64,
    "s390": Architecture.S390,
    "s390x": Architecture.S390X,
    "loongarch64": Architecture.LOONGARCH64,
}


class UnsupportedArchitectureError(ValueError):
    """A machine or architecture that the syscall tables do not cover."""


def native_architecture(machine: str | None = None, byteorder: str | None = None) -> Architecture:
    """Return the OCI architecture of `machine`, a `uname -m` value (default: this machine's).

    `byteorder` ("little" or "big", default: this interpreter's) distinguishes the MIPS variants,
    because `uname -m` reports "mips" and "mips64" for both endiannesses.
    """
    machine = os.uname().machine if machine is None else machine
    little_endian = (sys.byteorder if byteorder is None else byteorder) == "little"
    if machine in _MACHINES:
        return _MACHINES[machine]
    if machine.startswith("arm"):  # armv6l, armv7l, armv8l (32-bit userland on arm64)...
        return Architecture.ARM
    if machine == "mips":
        return Architecture.MIPSEL if little_endian else Architecture.MIPS
    if machine == "mips64":
        return Architecture.MIPSEL64 if little_endian else Architecture.MIPS64
    raise UnsupportedArchitectureError(
        f"machine {machine!r} has no seccomp architecture known to seccomp-recorder:"
        f" name the architecture explicitly, one of {', '.join(Architecture)}"
    )


def companion_architectures(architecture: Architecture | str) -> tuple[Architecture, ...]:
    """Return the other architectures whose processes a kernel of `architecture` runs.

    x86_64 runs x86 and x32 processes; aarch64 runs ARM ones. Empty when there are none.
    """
    return COMPANION_ARCHITECTURES.get(to_architecture(architecture), ())


def syscall_name(architecture: Architecture | str, number: int) -> str | None:
    """Return the name of syscall `number` on `architecture`, or None if it has no name."""
    return _numbers_to_names(to_architecture(architecture)).get(number)


def syscall_number(architecture: Architecture | str, name: str) -> int | None:
    """Return the number of syscall `name` on `architecture`, or None if it has none there."""
    return _names_to_numbers(to_architecture(architecture)).get(name)


def syscall_names(architecture: Architecture | str) -> frozenset[str]:
    """Return every syscall name that `architecture` has."""
    return frozenset(_names_to_numbers(to_architecture(architecture)))


def all_syscall_names() -> frozenset[str]:
    """Return every syscall name that any architecture's table contains."""
    return frozenset(_syscall_tables().names())


def to_architecture(architecture: Architecture | str) -> Architecture:
    """Convert an OCI architecture name to the enum; raise UnsupportedArchitectureError."""
    try:
        return Architecture(architecture)
    except ValueError:
        raise UnsupportedArchitectureError(
            f"invalid architecture {architecture!r}: use one of {', '.join(Architecture)}"
        ) from None


@cache
def _syscall_tables() -> Any:
    return system_calls.syscalls()


@cache
def _names_to_numbers(architecture: Architecture) -> Mapping[str, int]:
    table: Mapping[str, int] = _syscall_tables().load_arch_table(TABLE_NAMES[architecture])
    return dict(table)


@cache
def _numbers_to_names(architecture: Architecture) -> Mapping[int, str]:
    names_to_numbers = _names_to_numbers(architecture)
    numbers_to_names = {number: name for name, number in names_to_numbers.items()}
    # NB: the lookup by number relies on each number having a single name in the table.
    if len(numbers_to_names) != len(names_to_numbers):
        raise RuntimeError(
            f"the system-calls table {TABLE_NAMES[architecture]!r} gives one number several"
            " names, so numbers cannot be named: check the installed system-calls version"
        )
    return numbers_to_names
