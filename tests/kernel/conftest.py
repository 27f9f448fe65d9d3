"""Fixtures of the kernel tests: the CLI, started processes, compiled workloads, strace."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from kernel_helpers import (
    COMMAND_TIMEOUT,
    WORKLOADS_DIR,
    Cli,
    Processes,
)

from prerequisites import require
from seccomp_bench import ground_truth
from seccomp_recorder.recorder.recorder import DEFAULT_BTF_PATH, DEFAULT_OBJECT_PATH

# Warnings are errors, so a workload that drifts into undefined behaviour fails to build.
GCC_FLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-pthread")


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Every process the test starts through this fixture, killed when the test ends."""
    started = Processes()
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def cli(processes: Processes) -> Cli:
    return Cli(processes)


@pytest.fixture
def recording_host() -> None:
    """Require what recording needs: root, the kernel's BTF and the built BPF object."""
    require(os.geteuid() == 0, "recording needs root (CAP_BPF and CAP_PERFMON)")
    require(DEFAULT_BTF_PATH.is_file(), f"recording needs the kernel's BTF at {DEFAULT_BTF_PATH}")
    require(
        DEFAULT_OBJECT_PATH.is_file(),
        f"recording needs the BPF object at {DEFAULT_OBJECT_PATH}: run `make bpf`",
    )


@pytest.fixture(scope="session")
def compile_workload(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Return a function that builds tests/kernel/workloads/NAME.c with gcc, once a session."""
    output_dir = tmp_path_factory.mktemp("workloads")
    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name in built:
            return built[name]
        require(shutil.which("gcc") is not None, "the workloads are built with gcc")
        binary = output_dir / name
        result = subprocess.run(
            ["gcc", *GCC_FLAGS, "-o", str(binary), str(WORKLOADS_DIR / f"{name}.c")],
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )
        assert result.returncode == 0, f"gcc failed on {name}.c:\n{result.stderr}"
        built[name] = binary
        return binary

    return build


@pytest.fixture
def strace_names(processes: Processes, tmp_path: Path) -> Callable[[Sequence[str]], set[str]]:
    """Return a function that runs a command under `strace -f` and returns the names it saw."""
    require(shutil.which("strace") is not None, "the ground truth comes from strace")

    def trace(argv: Sequence[str]) -> set[str]:
        output = tmp_path / "strace.out"
        result = processes.run(["strace", "-f", "-qq", "-o", str(output), *argv])
        assert result.returncode == 0, f"{argv[0]} failed under strace: {result.stderr}"
        return ground_truth.strace_names(output.read_text())

    return trace


@pytest.fixture
def compat_program(compile_workload: Callable[[str], Path], processes: Processes) -> Path:
    """Build workloads/compat.c and require IA32 emulation (its int $0x80 getpid returns its pid)."""
    require(os.uname().machine == "x86_64", "the compat workload is x86_64 code")
    program = compile_workload("compat")
    probe = processes.start([str(program), "probe"], stdout=subprocess.PIPE)
    stdout, _ = probe.communicate(timeout=COMMAND_TIMEOUT)
    require(
        probe.returncode == 0 and stdout.strip() == str(probe.pid),
        "IA32 emulation is off in this kernel (int $0x80 getpid did not return the pid):"
        " boot without ia32_emulation=false",
    )
    return program
