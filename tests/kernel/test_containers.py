"""Recording busybox containers run by runc and crun, then enforcing the profile.

For each runtime and no_new_privs setting, the container is recorded twice:
unconfined (the recorder adds the runtime's measured post-filter calls) and under
an allow-all seccomp filter (the recorder detects the filter point itself). The
profile must let the same container run, deny a step outside it, contain every
call of the SCMP_ACT_LOG ground truth, and none of the runtime's setup calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prerequisites import require
from seccomp_devcluster import oci
from seccomp_devcluster.auditlog import SeccompAuditReader
from seccomp_devcluster.cgroups import remove_cgroup
from seccomp_recorder.recorder.recorder import DEFAULT_OBJECT_PATH
from seccomp_recorder.recorder.runtimes import Runtime, runtime_calls
from seccomp_recorder.syscalls import tables

pytestmark = pytest.mark.kernel

WORKLOAD = ["/bin/sh", "-c", "echo hello > /tmp/out && cat /tmp/out && ls / > /dev/null"]
OUTSIDE_PROFILE = ["/bin/mkdir", "/tmp/made-by-the-test"]

# What runc and crun do to build a container before they install its filter. None of
# it may reach a profile unless the workload itself makes the call, which this one does not.
RUNTIME_SETUP_CALLS = frozenset(
    {
        "mount", "umount2", "pivot_root", "sethostname", "unshare", "setns", "mknodat",
        "symlinkat", "keyctl", "chroot", "setsid", "bind", "socket", "mkdirat",
    }
)
GROUND_TRUTH_RUNS = 3
CGROUP_PARENT = f"seccomp-recorder-test-{os.getpid()}"
NATIVE = str(tables.native_architecture())


def allow_all_filter() -> dict[str, Any]:
    # One rule for a call the workload never makes, so every runtime installs a real filter.
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [NATIVE],
        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


def log_all_filter() -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_LOG", "architectures": [NATIVE]}


@pytest.fixture(scope="module", autouse=True)
def _prerequisites() -> Iterator[None]:
    require(os.geteuid() == 0, "recording containers needs root")
    require(DEFAULT_OBJECT_PATH.is_file(), "the BPF object is not built: run `make bpf`")
    require(Path("/sys/kernel/btf/vmlinux").is_file(), "the kernel has no BTF")
    for runtime in Runtime:
        require(oci.shutil.which(runtime.value) is not None, f"{runtime.value} is not installed")
    with oci.crun_ready():
        yield
    remove_cgroup(CGROUP_PARENT)


def container_spec(runtime: str, no_new_privs: bool, args: list[str],
                   seccomp: dict[str, Any] | None) -> oci.ContainerSpec:
    return oci.ContainerSpec(
        args=args,
        runtime=runtime,  # type: ignore[arg-type]
        no_new_privileges=no_new_privs,
        seccomp=seccomp,
        cgroup_parent=CGROUP_PARENT,
    )


def record_container(workdir: Path, runtime: str, no_new_privs: bool,
                     seccomp: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """Record one run of WORKLOAD with `seccomp-recorder record` and return the OCI profile."""
    container_id = oci.new_container_id()
    spec = container_spec(runtime, no_new_privs, WORKLOAD, seccomp)
    bundle = oci.create_bundle(spec, workdir / container_id, container_id=container_id)
    output = workdir / "profile.json"
    completed = subprocess.run(
        [sys.executable, "-m", "seccomp_recorder.cli.main", "record", "--format", "oci",
         "-o", str(output), "--",
         runtime, "--root", str(workdir / "state"), "run", "--bundle", str(bundle),
         container_id],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "hello" in completed.stdout
    return json.loads(output.read_text()), completed.stderr


def allowed_names(profile: dict[str, Any]) -> set[str]:
    return {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW"
        for name in rule["names"]
    }


def from_container(exe: str) -> bool:
    """Tell whether an audit record came from the container: busybox or its runtime.

    Other jobs on the machine may run their own SCMP_ACT_LOG filters meanwhile. The
    runtime's own calls after its filter show the executable as "/", because after
    pivot_root its binary lies outside the container's root.
    """
    return exe in ("/bin/busybox", "/")


def audit_names(reader: SeccompAuditReader, mark: int) -> set[str]:
    names = set()
    for record in reader.since(mark):
        if not from_container(record.exe):
            continue
        name = tables.syscall_name(record.architecture, record.syscall)
        assert name is not None, f"ground truth has an unknown syscall {record}"
        names.add(name)
    return names


def wait_for_quiet(reader: SeccompAuditReader) -> None:
    """Wait until no audit record has arrived for a while: delivery is asynchronous."""
    count = -1
    while count != reader.mark():
        count = reader.mark()
        time.sleep(0.3)


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], set[str]]:
    """Names logged by SCMP_ACT_LOG runs of WORKLOAD, union of a few runs per setting."""
    workdir = tmp_path_factory.mktemp("ground-truth")
    truth: dict[tuple[str, bool], set[str]] = {}
    with SeccompAuditReader() as reader:
        for runtime in ("runc", "crun"):
            for no_new_privs in (True, False):
                names: set[str] = set()
                for _ in range(GROUND_TRUTH_RUNS):
                    mark = reader.mark()
                    spec = container_spec(runtime, no_new_privs, WORKLOAD, log_all_filter())
                    result = oci.run_container(spec, workdir)
                    assert result.exit_code == 0, result.stderr
                    wait_for_quiet(reader)
                    names |= audit_names(reader, mark)
                assert names, f"no audit record arrived for {runtime}"
                truth[(runtime, no_new_privs)] = names
        assert reader.lost_messages == 0
    return truth


@pytest.mark.parametrize("recorded_under", ["unconfined", "allow-all filter"])
@pytest.mark.parametrize("no_new_privs", [True, False], ids=["nnp", "no-nnp"])
@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_container_profile_matches_ground_truth(
    runtime: str, no_new_privs: bool, recorded_under: str, tmp_path: Path,
    ground_truth: dict[tuple[str, bool], set[str]],
) -> None:
    seccomp = allow_all_filter() if recorded_under == "allow-all filter" else None
    profile, _ = record_container(tmp_path, runtime, no_new_privs, seccomp)
    recorded = allowed_names(profile)
    truth = ground_truth[(runtime, no_new_privs)]

    missing = truth - recorded
    assert not missing, f"ground truth calls missing from the profile: {sorted(missing)}"

    setup_calls = recorded & RUNTIME_SETUP_CALLS
    assert not setup_calls, f"runtime setup calls in the profile: {sorted(setup_calls)}"

    # The only other difference allowed: calls from the runtime's measured post-filter
    # set that this ground truth happened not to see. runc is written in Go, whose
    # scheduler and preemption make futex, nanosleep, tgkill, rt_sigreturn... on any
    # thread in some runs only, so the profile keeps the union of many runs.
    measured = runtime_calls(Runtime(runtime)).post_filter_calls(no_new_privs)
    unexplained = recorded - truth - measured
    assert not unexplained, f"profile calls not in the ground truth: {sorted(unexplained)}"

    clone3_rules = [rule for rule in profile["syscalls"] if rule["names"] == ["clone3"]]
    if "clone3" not in recorded:
        assert clone3_rules[0]["errnoRet"] == 38


@pytest.mark.parametrize("no_new_privs", [True, False], ids=["nnp", "no-nnp"])
@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_recorded_profile_enforced_in_same_runtime(runtime: str, no_new_privs: bool,
                                                   tmp_path: Path) -> None:
    profile, _ = record_container(tmp_path, runtime, no_new_privs, seccomp=None)

    allowed = oci.run_container(
        container_spec(runtime, no_new_privs, WORKLOAD, profile), tmp_path / "enforce"
    )
    assert allowed.exit_code == 0, allowed.stderr
    assert allowed.stdout.strip() == b"hello"

    denied = oci.run_container(
        container_spec(runtime, no_new_privs, OUTSIDE_PROFILE, profile), tmp_path / "deny"
    )
    assert denied.exit_code != 0
    assert b"Operation not permitted" in denied.stderr


def test_recording_names_runtime_and_filter_point(tmp_path: Path) -> None:
    container_id = oci.new_container_id()
    spec = container_spec("crun", True, WORKLOAD, allow_all_filter())
    bundle = oci.create_bundle(spec, tmp_path / container_id, container_id=container_id)
    output = tmp_path / "profile.yaml"
    completed = subprocess.run(
        [sys.executable, "-m", "seccomp_recorder.cli.main", "record", "-o", str(output),
         "--name", "busybox", "--", "crun", "--root", str(tmp_path / "state"), "run",
         "--bundle", str(bundle), container_id],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    text = output.read_text()
    assert "seccomp-recorder.io/filter-point: seccomp-filter/crun/no-new-privileges" in text
