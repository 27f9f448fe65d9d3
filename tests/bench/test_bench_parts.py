"""Each measuring part of the benchmark runs end to end on a tiny configuration.

These tests check what the parts produce and what they leave behind, never how
fast anything is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from prerequisites import require
from seccomp_bench import build, control_plane, fidelity, servers, syscall_cost
from seccomp_bench.config import QUICK
from seccomp_recorder.recorder.recorder import DEFAULT_OBJECT_PATH

pytestmark = pytest.mark.kernel

TINY = replace(
    QUICK,
    name="tiny",
    syscall_calls=2_000,
    strace_calls=200,
    syscall_rounds=1,
    redis_requests=200,
    http_seconds=1,
    fidelity_programs=("last_call",),
    fidelity_redis_requests=50,
)
TOOLS = (
    "gcc",
    "clang",
    "bpftool",
    "strace",
    "redis-server",
    "redis-benchmark",
    "nginx",
    "wrk",
    "runc",
    "busybox",
)


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> build.Programs:
    require(os.geteuid() == 0, "the benchmark needs root")
    require(DEFAULT_OBJECT_PATH.is_file(), "the recorder's BPF object is not built: run make bpf")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    require(not missing, f"tools missing: {missing}; run scripts/install-deps")
    return build.build_all(tmp_path_factory.mktemp("bench-build"), TINY.fidelity_programs)


def _mounts_under(directory: Path) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return [point for point in points if point.startswith(str(directory))]


@pytest.fixture(scope="module")
def syscall_run(
    programs: build.Programs, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    """Part 1 once, with its work folder."""
    work_dir = tmp_path_factory.mktemp("syscall-cost")
    return syscall_cost.measure(TINY, programs, work_dir), work_dir


def test_syscall_cost_every_variant(syscall_run: tuple[dict[str, Any], Path]) -> None:
    section, _ = syscall_run

    variants = [info["id"] for info in section["variants"]]
    assert variants[0] == "untraced"
    measured = {(run["variant"], run["loop"]) for run in section["runs"]}
    assert measured == {(variant, loop) for variant in variants[1:] for loop in syscall_cost.LOOPS}
    for run in section["runs"]:
        assert run["ns_per_call"] > 0
        assert run["baseline_ns_per_call"] > 0


def _processes_naming(directory: Path) -> list[str]:
    """Return the command lines of live processes that name a path under `directory`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in text:
            found.append(text)
    return found


def _empty_program_links() -> int:
    listing = subprocess.run(
        ["bpftool", "-j", "prog", "list"], capture_output=True, text=True, check=True, timeout=30
    )
    return sum(
        1 for program in json.loads(listing.stdout) if program.get("name") == "empty_sys_enter"
    )


def test_syscall_cost_leaves_nothing(syscall_run: tuple[dict[str, Any], Path]) -> None:
    # The machine is shared, so other jobs' links on sys_enter may come and go: the check
    # is that nothing of the benchmark's own remains to hold a link.
    _, work_dir = syscall_run

    assert not _mounts_under(work_dir), "the agent's BPF filesystem is still mounted"
    assert _processes_naming(work_dir) == [], "a variant's process is still running"
    assert _empty_program_links() == 0, "the empty BPF program is still loaded"


def test_syscall_cost_agent_links(syscall_run: tuple[dict[str, Any], Path]) -> None:
    section, _ = syscall_run

    runs = {(run["variant"], run["loop"]): run for run in section["runs"]}
    assert runs[("agent_idle", "getppid")]["agent_bpf_link_fds"] == 0
    # One link for each of the recorder's four programs.
    assert runs[("agent_other", "getppid")]["agent_bpf_link_fds"] == 4


def test_audit_log_variant_counts_records(
    syscall_run: tuple[dict[str, Any], Path],
) -> None:
    section, _ = syscall_run

    logged = [run for run in section["runs"] if run["variant"] == "audit_log"]
    assert len(logged) == len(syscall_cost.LOOPS)
    for run in logged:
        assert run["audit_records"] > 0


def test_servers_alternate_variants(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "recording the servers needs root")

    section = servers.measure(TINY, tmp_path)

    redis_variants = [run["variant"] for run in section["redis"]["runs"]]
    nginx_variants = [run["variant"] for run in section["nginx"]["runs"]]
    assert sorted(redis_variants) == ["recorded", "untraced"]
    assert sorted(nginx_variants) == ["recorded", "untraced"]
    for run in section["redis"]["runs"]:
        assert set(run["requests_per_second"]) == {"SET", "GET"}
    for run in section["nginx"]["runs"]:
        assert run["requests_per_second"] > 0


def test_fidelity_compares_both_truths(programs: build.Programs, tmp_path: Path) -> None:
    section = fidelity.measure(TINY, programs, tmp_path)

    names = [workload["name"] for workload in section["workloads"]]
    assert names == ["last_call", "redis", "busybox-runc"]
    last_call = section["workloads"][0]
    assert "getresgid" in last_call["profile_names"]
    for method in ("strace", "audit_log"):
        assert "getresgid" in last_call["ground_truth"][method]
        assert last_call["comparisons"][method]["missing"] == []
    container = section["workloads"][2]
    assert "mount" not in container["ground_truth"]["strace"]
    assert "sendfile" in container["ground_truth"]["strace"]
    assert section["docker_default"]["names_on_architecture"] > 250


def test_control_plane_on_one_node(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "the dev cluster needs root")
    config = replace(TINY, cluster_nodes=1, cluster_profiles=3, latency_samples=1, idle_seconds=0.5)

    section = control_plane.measure(config, tmp_path)

    assert section["nodes"] == 1
    apply = section["apply_latency"][0]
    assert 0 < apply["first_file_seconds"] <= apply["all_files_seconds"]
    assert apply["installed_seconds"] > 0
    assert section["install"]["timeline"][-1]["files"] == 3
    assert section["install"]["timeline"][-1]["installed"] == 3
    assert set(section["idle"]["processes"]) == {"apiserver", "operator", "agent/node-1"}
    assert section["recording_latency"][0]["profile_seconds"] > 0
    assert not _mounts_under(tmp_path), "the control plane left a mount behind"
