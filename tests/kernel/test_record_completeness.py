"""The recorder misses no syscall that `strace -f` records for small C programs.

Each workload makes the same syscalls however its processes and threads are
scheduled, so a run under strace and a run under the recorder can be compared
name for name. The distinctive calls are checked on their own too, so losing,
say, the call made just before exit_group fails even if some other part of the
program happened to make the same call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from kernel_helpers import Cli, allowed_names, load_profile

from seccomp_recorder.syscalls import tables

pytestmark = pytest.mark.kernel

NATIVE = tables.native_architecture()


@dataclass(frozen=True)
class Workload:
    name: str
    # Calls that only this workload's interesting part makes (see its source).
    distinctive: frozenset[str]


WORKLOADS = [
    # Four threads, each with a call of its own. glibc 2.34+ creates them with clone3.
    Workload("threads", frozenset({"getcpu", "sysinfo", "getpriority", "times", "clone3"})),
    # Three levels of fork and execve, one distinct call a level.
    Workload("exec_chain", frozenset({"umask", "getrusage", "sched_getscheduler"})),
    # A child that calls getpgid and ends with the plain exit syscall microseconds after fork.
    Workload("quick_child", frozenset({"getpgid", "exit"})),
    # getresgid right before exit_group, with no call in between.
    Workload("last_call", frozenset({"getresgid"})),
    # A thread calls getitimer, then exit_group while the main thread sleeps in pause.
    Workload("thread_exit_group", frozenset({"getitimer", "pause"})),
]


# The kernel's own BTF handed in as a file loads the raw tracepoint entry point instead of
# tp_btf, so the fallback runs on any kernel. Two workloads cover it.
RAW_TRACEPOINT = ("--btf", "/sys/kernel/btf/vmlinux")
CASES = [
    *(pytest.param(workload, (), id=workload.name) for workload in WORKLOADS),
    *(pytest.param(workload, RAW_TRACEPOINT, id=f"{workload.name}-raw-tp") for workload in WORKLOADS[:2]),
]


@pytest.mark.parametrize(("workload", "btf_options"), CASES)
def test_profile_matches_strace(
    workload: Workload,
    btf_options: tuple[str, ...],
    recording_host: None,
    cli: Cli,
    compile_workload: Callable[[str], Path],
    strace_names: Callable[[Sequence[str]], set[str]],
    tmp_path: Path,
) -> None:
    argv = [str(compile_workload(workload.name))]
    profile_path = tmp_path / "profile.json"

    traced = strace_names(argv)
    result = cli.run(
        "record", *btf_options, "--format", "oci", "-o", str(profile_path), "--", *argv
    )

    assert result.returncode == 0, result.stderr
    spec = load_profile(profile_path)
    recorded = allowed_names(spec)
    unnamed = {name for name in traced if tables.syscall_number(NATIVE, name) is None}
    assert not unnamed, f"strace saw calls that the {NATIVE} table does not name: {unnamed}"
    assert workload.distinctive <= traced, "the workload no longer makes its distinctive calls"
    assert workload.distinctive - recorded == set(), "distinctive calls missing from the profile"
    assert traced - recorded == set(), "calls strace saw are missing from the profile"
    # The launcher's own calls before the command's execve stay out of the profile.
    assert recorded - traced == set(), "the profile allows calls strace never saw"
    assert spec["architectures"] == [str(NATIVE)]

