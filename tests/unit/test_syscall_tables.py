"""Syscall tables per architecture, built on the system-calls package."""

from __future__ import annotations

import pytest

from seccomp_recorder.models.profile import Architecture
from seccomp_recorder.syscalls import tables
from seccomp_recorder.syscalls.tables import (
    UnsupportedArchitectureError,
    companion_architectures,
    native_architecture,
    syscall_name,
    syscall_names,
    syscall_number,
)

X32_BIT = 0x40000000


@pytest.mark.parametrize(
    ("architecture", "name", "number"),
    [
        ("SCMP_ARCH_X86_64", "read", 0),
        ("SCMP_ARCH_X86_64", "clone3", 435),
        ("SCMP_ARCH_X86", "read", 3),
        ("SCMP_ARCH_X86", "socketcall", 102),
        ("SCMP_ARCH_X32", "read", X32_BIT | 0),
        ("SCMP_ARCH_X32", "rt_sigaction", X32_BIT | 512),
        ("SCMP_ARCH_AARCH64", "read", 63),
        ("SCMP_ARCH_ARM", "read", 3),
        ("SCMP_ARCH_ARM", "set_tls", 0x0F0005),
        ("SCMP_ARCH_MIPS", "read", 4003),
        ("SCMP_ARCH_MIPSEL64", "read", 5000),
    ],
)
def test_name_and_number_map_both_ways(architecture: str, name: str, number: int) -> None:
    assert syscall_number(architecture, name) == number
    assert syscall_name(architecture, number) == name


@pytest.mark.parametrize(
    ("architecture", "number"),
    [
        ("SCMP_ARCH_X86_64", 100_000),
        ("SCMP_ARCH_X86_64", X32_BIT | 0),  # An x32 number is not an x86_64 one.
        ("SCMP_ARCH_X32", 0),  # x32 numbers always carry the x32 bit.
        ("SCMP_ARCH_X32", X32_BIT | 13),  # x86_64's rt_sigaction slot, unused by x32.
        ("SCMP_ARCH_AARCH64", -1),
    ],
)
def test_unknown_number_has_no_name(architecture: str, number: int) -> None:
    assert syscall_name(architecture, number) is None


@pytest.mark.parametrize(
    ("architecture", "name"),
    [
        ("SCMP_ARCH_X86_64", "socketcall"),
        ("SCMP_ARCH_AARCH64", "open"),
        ("SCMP_ARCH_X86", "epoll_wait_old"),
        ("SCMP_ARCH_X86_64", "not_a_syscall"),
    ],
)
def test_missing_name_has_no_number(architecture: str, name: str) -> None:
    assert syscall_number(architecture, name) is None


def test_every_architecture_has_a_table() -> None:
    for architecture in Architecture:
        assert "clone3" in syscall_names(architecture), architecture


def test_big_and_little_endian_share_numbers() -> None:
    assert syscall_names(Architecture.MIPS64) == syscall_names(Architecture.MIPSEL64)
    assert syscall_number(Architecture.PPC64, "clone3") == syscall_number(
        Architecture.PPC64LE, "clone3"
    )


def test_invalid_architecture_is_rejected() -> None:
    with pytest.raises(UnsupportedArchitectureError, match="invalid architecture 'SCMP_ARCH_VAX'"):
        syscall_number("SCMP_ARCH_VAX", "read")


@pytest.mark.parametrize(
    ("machine", "byteorder", "expected"),
    [
        ("x86_64", "little", Architecture.X86_64),
        ("i686", "little", Architecture.X86),
        ("aarch64", "little", Architecture.AARCH64),
        ("armv7l", "little", Architecture.ARM),
        ("ppc64le", "little", Architecture.PPC64LE),
        ("s390x", "big", Architecture.S390X),
        ("riscv64", "little", Architecture.RISCV64),
        ("mips64", "little", Architecture.MIPSEL64),
        ("mips64", "big", Architecture.MIPS64),
        ("mips", "big", Architecture.MIPS),
    ],
)
def test_machine_maps_to_architecture(machine: str, byteorder: str, expected: Architecture) -> None:
    assert native_architecture(machine, byteorder) is expected


def test_unknown_machine_is_rejected() -> None:
    with pytest.raises(
        UnsupportedArchitectureError, match="machine 'sparc64' has no seccomp architecture"
    ):
        native_architecture("sparc64")


def test_native_architecture_reads_this_machine() -> None:
    import os

    expected = native_architecture(os.uname().machine)
    assert native_architecture() is expected


@pytest.mark.parametrize(
    ("architecture", "companions"),
    [
        ("SCMP_ARCH_X86_64", (Architecture.X86, Architecture.X32)),
        ("SCMP_ARCH_AARCH64", (Architecture.ARM,)),
        ("SCMP_ARCH_S390X", (Architecture.S390,)),
        ("SCMP_ARCH_X86", ()),
        ("SCMP_ARCH_RISCV64", ()),
    ],
)
def test_companion_architectures(architecture: str, companions: tuple[Architecture, ...]) -> None:
    assert companion_architectures(architecture) == companions


def test_table_names_exist_in_package() -> None:
    package_architectures = set(tables._syscall_tables().archs())
    for architecture, table_name in tables.TABLE_NAMES.items():
        assert table_name in package_architectures, architecture
