"""Part 3: how close each recorded profile is to what the workload really called.

Every workload runs three times: under `seccomp-recorder record`, under
`strace -f`, and under a filter that logs every call (SCMP_ACT_LOG, read from
the audit netlink group). The profile is compared with each ground truth: the
calls it misses, and the calls it allows that the ground truth did not see,
each with the reason the benchmark can give for it. The profile's size is set
against the number of calls Docker's default profile allows on this
architecture.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seccomp_bench import ground_truth, processes
from seccomp_bench.build import Programs
from seccomp_bench.config import BenchConfig
from seccomp_bench.processes import LOOPBACK, RECORDER_CLI, BenchError
from seccomp_devcluster import oci
from seccomp_devcluster.cgroups import remove_cgroup
from seccomp_devcluster.node.seccomp import MOBY_DEFAULT_PROFILE, resolve_moby_profile
from seccomp_recorder.recorder.runtimes import Runtime, runtime_calls
from seccomp_recorder.syscalls import tables

logger = logging.getLogger(__name__)

NATIVE = str(tables.native_architecture())
RUN_TIMEOUT = 300.0
CONTAINER_COMMAND = ["/bin/sh", "-c", "echo hello > /tmp/out && cat /tmp/out && ls / > /dev/null"]
CGROUP_PARENT = f"seccomp-bench-{os.getpid()}"

# Reasons a profile may allow a call that one ground truth did not see.
REASON_RUNTIME = "runtime_post_filter"
REASON_OTHER_TRUTH = "seen_by_other_ground_truth"
REASON_UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    kind: str  # "program", "redis" or "container"
    argv: tuple[str, ...] = ()


def workloads(config: BenchConfig, programs: Programs) -> list[Workload]:
    found = [
        Workload(
            name, f"tests/kernel/workloads/{name}.c", "program", (str(programs.workloads[name]),)
        )
        for name in config.fidelity_programs
    ]
    found.append(
        Workload(
            "redis",
            f"redis-server serving `redis-benchmark -n {config.fidelity_redis_requests}` on loopback,"
            " then `SHUTDOWN NOSAVE`",
            "redis",
        )
    )
    found.append(
        Workload(
            "busybox-runc",
            "busybox-static container under runc, no_new_privs, recorded without a filter: "
            + " ".join(CONTAINER_COMMAND),
            "container",
        )
    )
    return found


def allowed_names(profile: dict[str, Any]) -> set[str]:
    """Return the names that SCMP_ACT_ALLOW rules allow, with or without argument conditions."""
    return {
        name
        for rule in profile.get("syscalls", [])
        if rule["action"] == "SCMP_ACT_ALLOW"
        for name in rule["names"]
    }


def docker_default_allowed() -> dict[str, Any]:
    """Count the calls Docker's default profile allows here, for the default capabilities."""
    moby = json.loads(MOBY_DEFAULT_PROFILE.read_text())
    resolved = resolve_moby_profile(moby, list(oci.DEFAULT_CAPABILITIES))
    names = allowed_names(resolved)
    native = {name for name in names if tables.syscall_number(NATIVE, name) is not None}
    return {
        "source": "devcluster/seccomp_devcluster/data/docker-default-seccomp.json",
        "architecture": NATIVE,
        "capabilities": list(oci.DEFAULT_CAPABILITIES),
        "names_listed": len(names),
        "names_on_architecture": len(native),
    }


class Runner:
    """Runs the workloads under each method; owns the work folder and the audit reader."""

    def __init__(
        self,
        config: BenchConfig,
        programs: Programs,
        work_dir: Path,
        reader: ground_truth.SessionAuditReader,
    ) -> None:
        self.config = config
        self.programs = programs
        self.work_dir = work_dir
        self.reader = reader
        self._runs = 0

    def _fresh(self, stem: str) -> Path:
        self._runs += 1
        return self.work_dir / f"{self._runs:03d}-{stem}"

    def execute(self, workload: Workload, prefix: list[str], log_filter: bool) -> None:
        """Run `workload` once with `prefix` before its command."""
        if workload.kind == "program":
            processes.run([*prefix, *workload.argv], timeout=RUN_TIMEOUT)
        elif workload.kind == "redis":
            self._serve_redis(prefix)
        else:
            self._run_container(prefix, log_filter)

    def _serve_redis(self, prefix: list[str]) -> None:
        port = processes.free_port()
        redis = shutil.which("redis-server") or "redis-server"
        data_dir = self._fresh("redis")
        data_dir.mkdir(parents=True)
        server = processes.start(
            [
                *prefix,
                redis,
                "--port",
                str(port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data_dir),
                "--logfile",
                str(data_dir / "redis.log"),
            ],
            log=data_dir / "output.log",
        )
        try:
            processes.wait_until(
                lambda: processes.port_open(port), "redis-server", RUN_TIMEOUT, process=server
            )
            processes.run(
                [
                    "redis-benchmark",
                    "-h",
                    LOOPBACK,
                    "-p",
                    str(port),
                    "-q",
                    "-n",
                    str(self.config.fidelity_redis_requests),
                    "-c",
                    "4",
                    "-t",
                    "set,get,incr,lpush,lpop",
                ],
                timeout=RUN_TIMEOUT,
            )
            processes.run(
                ["redis-cli", "-h", LOOPBACK, "-p", str(port), "shutdown", "nosave"],
                timeout=RUN_TIMEOUT,
            )
            server.wait(RUN_TIMEOUT)
        finally:
            processes.stop(server)
        if server.returncode != 0:
            raise BenchError(f"redis-server ended with {server.returncode}; see {data_dir}")

    def _run_container(self, prefix: list[str], log_filter: bool) -> None:
        container_id = oci.new_container_id()
        seccomp = (
            {"defaultAction": "SCMP_ACT_LOG", "architectures": [NATIVE]} if log_filter else None
        )
        spec = oci.ContainerSpec(
            args=list(CONTAINER_COMMAND),
            runtime="runc",
            no_new_privileges=True,
            seccomp=seccomp,
            cgroup_parent=CGROUP_PARENT,
        )
        bundle = oci.create_bundle(spec, self._fresh("bundle"), container_id=container_id)
        completed = processes.run(
            [
                *prefix,
                oci.runtime_binary("runc"),
                "--root",
                str(self.work_dir / "runc-state"),
                "run",
                "--bundle",
                str(bundle),
                container_id,
            ],
            timeout=RUN_TIMEOUT,
        )
        if "hello" not in completed.stdout:
            raise BenchError(f"the container printed no hello: {completed.stdout!r}")
        shutil.rmtree(bundle, ignore_errors=True)

    def recorded(self, workload: Workload) -> dict[str, Any]:
        output = self._fresh("profile.json")
        self.execute(
            workload,
            [*RECORDER_CLI, "record", "--format", "oci", "-o", str(output), "--"],
            log_filter=False,
        )
        profile: dict[str, Any] = json.loads(output.read_text())
        return profile

    def straced(self, workload: Workload) -> set[str]:
        output = self._fresh("strace.out")
        self.execute(
            workload,
            ["strace", "-f", "-qq", "--pidns-translation", "-o", str(output)],
            log_filter=False,
        )
        entrypoint = CONTAINER_COMMAND[0] if workload.kind == "container" else None
        return ground_truth.strace_names(output.read_text(), entrypoint)

    def logged(self, workload: Workload) -> tuple[set[str], set[str], int]:
        """Return the names logged for one run, the numbers no table names, and lost reads."""
        errors_before = self.reader.receive_errors
        session_file = self._fresh("session")
        log_option = [] if workload.kind == "container" else ["--log"]
        self.execute(
            workload,
            [str(self.programs.audit_exec), *log_option, "--session-file", str(session_file), "--"],
            log_filter=True,
        )
        self.reader.wait_for_quiet()
        names, unnamed = self.reader.names(int(session_file.read_text()))
        return names, unnamed, self.reader.receive_errors - errors_before


def explain_extras(
    extra: set[str], other_truth: set[str], runtime_set: frozenset[str]
) -> list[dict[str, str]]:
    """Give each call the profile allows beyond one ground truth the reason the data shows."""
    explained = []
    for name in sorted(extra):
        if name in runtime_set:
            reason = REASON_RUNTIME
        elif name in other_truth:
            reason = REASON_OTHER_TRUTH
        else:
            reason = REASON_UNEXPLAINED
        explained.append({"name": name, "reason": reason})
    return explained


def compare(
    workload: Workload, profile: dict[str, Any], truths: dict[str, set[str]], docker_count: int
) -> dict[str, Any]:
    recorded = allowed_names(profile)
    runtime_set = (
        runtime_calls(Runtime.RUNC).post_filter_calls(True)
        if workload.kind == "container"
        else frozenset()
    )
    comparisons = {}
    for method, truth in truths.items():
        other = set().union(*(names for name, names in truths.items() if name != method))
        comparisons[method] = {
            "calls": len(truth),
            "missing": sorted(truth - recorded),
            "extra": explain_extras(recorded - truth, other, runtime_set),
        }
    return {
        "name": workload.name,
        "description": workload.description,
        "kind": workload.kind,
        "profile_calls": len(recorded),
        "profile_names": sorted(recorded),
        "docker_default_fraction": len(recorded) / docker_count,
        "ground_truth": {method: sorted(names) for method, names in truths.items()},
        "comparisons": comparisons,
    }


@contextmanager
def _container_cleanup() -> Iterator[None]:
    try:
        yield
    finally:
        remove_cgroup(CGROUP_PARENT)


def measure(config: BenchConfig, programs: Programs, work_dir: Path) -> dict[str, Any]:
    """Record, strace and log every workload; return the comparisons of part 3."""
    work_dir.mkdir(parents=True, exist_ok=True)
    docker = docker_default_allowed()
    results = []
    with ground_truth.SessionAuditReader() as reader, _container_cleanup():
        runner = Runner(config, programs, work_dir, reader)
        for workload in workloads(config, programs):
            logger.info("fidelity: %s", workload.name)
            profile = runner.recorded(workload)
            straced = runner.straced(workload)
            logged, unnamed, receive_errors = runner.logged(workload)
            if unnamed:
                logger.warning(
                    "%s: audit records with numbers no table names: %s",
                    workload.name,
                    sorted(unnamed),
                )
            result = compare(
                workload,
                profile,
                {"strace": straced, "audit_log": logged},
                docker["names_on_architecture"],
            )
            result["unnamed_audit_numbers"] = sorted(unnamed)
            # NOTE: a receive error means the kernel dropped records for lack of buffer, so
            # the SCMP_ACT_LOG ground truth of that run may lack calls.
            result["audit_receive_errors"] = receive_errors
            results.append(result)
    return {"docker_default": docker, "workloads": results}
