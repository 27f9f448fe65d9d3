"""Compile the suite's programs: the C micro-benchmarks, the launcher, the workloads, the empty BPF program.

The BPF program is compiled with clang the way `make bpf` compiles the recorder
(CO-RE against the running kernel's BTF, no kernel headers). Everything goes
into one build folder, never into the source tree.
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPOSITORY = BENCH_DIR.parent
C_DIR = BENCH_DIR / "c"
BPF_DIR = BENCH_DIR / "bpf"
WORKLOADS_DIR = REPOSITORY / "tests" / "kernel" / "workloads"

# As the kernel tests build their workloads: warnings are errors.
GCC_FLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-pthread")
# As the Makefile's `bpf` target builds the recorder.
CLANG_BPF_FLAGS = ("-g", "-O2", "-Wall", "-Werror", "-target", "bpf")
BPF_ARCHITECTURES = {"x86_64": "x86", "aarch64": "arm64"}
COMPILE_TIMEOUT = 120.0


class BuildError(RuntimeError):
    """A compiler failed; the message carries its command and output."""


@dataclass(frozen=True)
class Programs:
    """Paths of the compiled programs."""

    syscall_loop: Path
    audit_exec: Path
    empty_bpf: Path
    workloads: dict[str, Path]


def _compile(argv: list[str]) -> None:
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False
    )
    if completed.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed:\n{completed.stderr}")


def compile_c(source: Path, output: Path) -> Path:
    _compile(["gcc", *GCC_FLAGS, "-o", str(output), str(source)])
    return output


def compile_bpf(source: Path, output: Path) -> Path:
    machine = platform.machine()
    try:
        target = BPF_ARCHITECTURES[machine]
    except KeyError:
        raise BuildError(f"no BPF target architecture known for {machine!r}") from None
    _compile(
        [
            "clang",
            *CLANG_BPF_FLAGS,
            f"-D__TARGET_ARCH_{target}",
            f"-I/usr/include/{machine}-linux-gnu",
            "-c",
            str(source),
            "-o",
            str(output),
        ]
    )
    return output


def build_all(build_dir: Path, workloads: tuple[str, ...]) -> Programs:
    """Compile every program into `build_dir`; raise BuildError on the first failure."""
    build_dir.mkdir(parents=True, exist_ok=True)
    return Programs(
        syscall_loop=compile_c(C_DIR / "syscall_loop.c", build_dir / "syscall_loop"),
        audit_exec=compile_c(C_DIR / "audit_exec.c", build_dir / "audit_exec"),
        empty_bpf=compile_bpf(BPF_DIR / "empty.bpf.c", build_dir / "empty.bpf.o"),
        workloads={
            name: compile_c(WORKLOADS_DIR / f"{name}.c", build_dir / name) for name in workloads
        },
    )
