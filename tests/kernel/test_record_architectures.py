"""Compat and x32 calls are named with their own architecture's table, and unnamed numbers are reported.

The workload (workloads/compat.c) is a 64-bit x86 program that calls i386 getpid
(number 20, which is writev in the native table) through int $0x80, x32 getpid,
i386 number 999 and native number 1000. It never calls the native getpid.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from kernel_helpers import Cli, allowed_names

from seccomp_recorder.syscalls import tables

pytestmark = pytest.mark.kernel

UNKNOWN_ANNOTATION = "seccomp-recorder.io/unknown-syscalls"


def test_compat_calls_named_per_architecture(
    recording_host: None, cli: Cli, compat_program: Path, tmp_path: Path
) -> None:
    profile_path = tmp_path / "compat.yaml"

    result = cli.run("record", "-o", str(profile_path), "--", str(compat_program))

    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(profile_path.read_text())
    spec = document["spec"]
    names = allowed_names(spec)
    assert spec["architectures"][0] == "SCMP_ARCH_X86_64"
    assert "SCMP_ARCH_X86" in spec["architectures"]
    assert "SCMP_ARCH_X32" in spec["architectures"]
    assert "getpid" in names
    # Naming i386 number 20 with the native table would have given writev.
    assert "writev" not in names


def test_unnamed_numbers_reported_not_written(
    recording_host: None, cli: Cli, compat_program: Path, tmp_path: Path
) -> None:
    profile_path = tmp_path / "compat.yaml"

    result = cli.run("record", "-o", str(profile_path), "--", str(compat_program))

    assert result.returncode == 0, result.stderr
    assert "syscall number 1000 has no name on SCMP_ARCH_X86_64" in result.stderr
    assert "syscall number 999 has no name on SCMP_ARCH_X86" in result.stderr
    document = yaml.safe_load(profile_path.read_text())
    annotations = document["metadata"]["annotations"]
    assert annotations[UNKNOWN_ANNOTATION] == "SCMP_ARCH_X86:999,SCMP_ARCH_X86_64:1000"

    spec = document["spec"]
    every_name = [name for rule in spec["syscalls"] for name in rule["names"]]
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", name) for name in every_name), every_name
    invented = [
        name
        for name in every_name
        if all(tables.syscall_number(arch, name) is None for arch in spec["architectures"])
    ]
    assert invented == [], "names that no listed architecture's table has"
