"""The ways part 1 runs the syscall loop: untraced, and under each kind of tracer.

Each variant is set up by `start`, wraps the loop's command with `command`, and
is torn down by `stop`, so the untraced baseline of the same round runs with
nothing of this benchmark attached. `after_run` returns what the variant
observed during one run, such as the audit records that arrived.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes

from seccomp_bench import agents, processes
from seccomp_bench.processes import RECORDER_CLI, BenchError
from seccomp_devcluster.auditlog import SeccompAuditReader
from seccomp_recorder.recorder import libbpf

logger = logging.getLogger(__name__)

# Seconds for a recording command line to register the process it records.
READY_TIMEOUT = 60.0
# Seconds for the agent to detach once its recording is gone. It keeps the recorder
# while the calls of ended containers wait for a pod to claim them, up to its 60 s grace
# (UNMATCHED_GRACE); on a shared machine other jobs' containers end meanwhile.
DETACH_TIMEOUT = 180.0
# Seconds without a new audit record after which delivery counts as finished.
AUDIT_QUIET = 0.3


@dataclass(frozen=True)
class VariantInfo:
    """A variant's name in the results and the page, and exactly what it measures."""

    id: str
    label: str
    description: str


class Variant:
    info: VariantInfo

    def start(self) -> None:
        """Set the variant up; the loop runs next."""

    def command(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def after_run(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        """Tear the variant down, leaving nothing of it attached."""


UNTRACED = VariantInfo(
    "untraced",
    "untraced",
    "The loop alone. Nothing of this benchmark is attached; BPF programs that other"
    " processes attached to sys_enter are counted for every run.",
)


class Untraced(Variant):
    info = UNTRACED


class EmptyBpf(Variant):
    info = VariantInfo(
        "empty_bpf",
        "empty eBPF program (floor)",
        "An eBPF program on tp_btf/sys_enter that returns 0 at once (bench/bpf/empty.bpf.c),"
        " loaded and attached through the project's libbpf bindings: the cost of any eBPF"
        " recorder on this tracepoint before it does any work.",
    )

    def __init__(self, object_path: Path) -> None:
        self.object_path = object_path
        self._object: libbpf.Object | None = None

    def start(self) -> None:
        self._object = libbpf.Object(self.object_path)
        self._object.load()
        self._object.attach_all()

    def stop(self) -> None:
        if self._object is not None:
            self._object.close()
            self._object = None


class RecordedByCli(Variant):
    info = VariantInfo(
        "cli_recorded",
        "recorder, recorded process",
        "`seccomp-recorder record --format oci -o FILE -- syscall_loop ...`: the loop is the"
        " recorded process (command-tree mode). Its time excludes the recorder's start-up.",
    )

    def __init__(self, work_dir: Path) -> None:
        self.profile = work_dir / "cli-recorded-profile.json"

    def command(self, argv: Sequence[str]) -> list[str]:
        return [*RECORDER_CLI, "record", "--format", "oci", "-o", str(self.profile), "--", *argv]


class CliRecordingAnother(Variant):
    info = VariantInfo(
        "cli_other",
        "recorder (command line) active, loop not recorded",
        "`seccomp-recorder record` records another process (a `sleep`) while the loop runs"
        " beside it, untracked: the recorder's sys_enter program runs for the loop's calls,"
        " finds no task state for it, and returns (command-tree mode).",
    )

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        ready = self.work_dir / "cli-other-ready"
        ready.unlink(missing_ok=True)
        # The shell writes the file only once the recorder has registered it and released it.
        self._process = processes.start(
            [
                *RECORDER_CLI,
                "record",
                "--format",
                "oci",
                "-o",
                str(self.work_dir / "cli-other-profile.json"),
                "--",
                "/bin/sh",
                "-c",
                f": > {ready}; exec sleep 3600",
            ],
            log=self.work_dir / "cli-other.log",
        )
        processes.wait_until(
            ready.exists, "the command-line recorder to start", READY_TIMEOUT, process=self._process
        )

    def stop(self) -> None:
        if self._process is not None:
            # The recorder passes SIGTERM on to `sleep`, then writes its profile and exits.
            processes.stop(self._process, signal.SIGTERM)
            self._process = None


class AgentVariant(Variant):
    """The node agent, started afresh for each run of the variant."""

    RECORDING = "bench-recording"

    def __init__(
        self, kubeconfig: Path, client: kubernetes.client.ApiClient, work_dir: Path, bpffs: Path
    ) -> None:
        self.client = client
        self.agent = agents.Agent("bench-node", work_dir / "kubelet", kubeconfig, work_dir, bpffs)
        self._active = False

    def _activate(self) -> None:
        agents.create_object(
            self.client,
            "seccomprecordings",
            agents.recording_body(self.RECORDING, {"app": "bench-target"}),
        )
        self._active = True
        self.agent.wait_for_log("recorder attached on node")

    def _deactivate(self) -> None:
        agents.delete_object(self.client, "seccomprecordings", self.RECORDING)
        self._active = False
        self.agent.wait_for_log("recorder detached on node", timeout=DETACH_TIMEOUT)

    def after_run(self) -> dict[str, Any]:
        return {"agent_bpf_link_fds": self.agent.bpf_link_fds()}

    def stop(self) -> None:
        try:
            agents.delete_object(self.client, "seccomprecordings", self.RECORDING)
            self._active = False
        finally:
            self.agent.stop()
        # An agent stopped while recording leaves its maps and links pinned for the next
        # agent to resume; without the link pins its programs detach.
        pins = sorted(self.agent.pin_dir.glob("*")) if self.agent.pin_dir.exists() else []
        for pin in pins:
            pin.unlink()
        if pins:
            logger.info(
                "removed %d pins the stopped agent left in %s", len(pins), self.agent.pin_dir
            )


class AgentIdle(AgentVariant):
    info = VariantInfo(
        "agent_idle",
        "agent, no recording",
        "The node agent running against the API server with the project's CRDs and no"
        " SeccompRecording. By design nothing is attached then; the run records how many"
        " links sit on sys_enter to check it.",
    )

    def start(self) -> None:
        self.agent.start()


class AgentRecording(AgentVariant):
    info = VariantInfo(
        "agent_other",
        "agent recording, loop on the host",
        "The node agent with an active SeccompRecording, so its recorder is attached in"
        " all-containers mode. The loop runs in the host's mount namespace, whose calls the"
        " program skips after reading the task's mount namespace.",
    )

    def start(self) -> None:
        self.agent.start()
        self._activate()


class AgentAfterRecording(AgentVariant):
    info = VariantInfo(
        "agent_after",
        "agent after its recording ended",
        "The node agent after its only SeccompRecording was deleted and it logged that it"
        " detached the recorder: what a node pays once recording is over.",
    )

    def start(self) -> None:
        self.agent.start()
        self._activate()
        self._deactivate()


class AuditLog(Variant):
    info = VariantInfo(
        "audit_log",
        "SCMP_ACT_LOG + audit reader",
        "The loop under a seccomp filter that returns SECCOMP_RET_LOG for every call"
        " (bench/c/audit_exec.c) while the project's audit reader (SeccompAuditReader)"
        " consumes the AUDIT_SECCOMP records from the audit netlink multicast group.",
    )

    def __init__(self, audit_exec: Path) -> None:
        self.audit_exec = audit_exec
        self._reader: SeccompAuditReader | None = None
        self._mark = 0
        self._errors = 0

    def start(self) -> None:
        self._reader = SeccompAuditReader()
        self._reader.open()
        self._mark = 0
        self._errors = 0

    def command(self, argv: Sequence[str]) -> list[str]:
        return [str(self.audit_exec), "--log", "--", *argv]

    def after_run(self) -> dict[str, Any]:
        reader = self._reader
        if reader is None:
            raise BenchError("the audit reader is not open")
        count = -1
        while count != reader.mark():
            count = reader.mark()
            time.sleep(AUDIT_QUIET)
        received = count - self._mark
        errors = reader.lost_messages - self._errors
        self._mark = count
        self._errors = reader.lost_messages
        # NOTE: the multicast group carries every process's records, so other jobs on the
        # machine that use SCMP_ACT_LOG add to this count.
        return {"audit_records": received, "audit_receive_errors": errors}

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class Strace(Variant):
    info = VariantInfo(
        "strace",
        "strace -f",
        "`strace -f -qq -o /dev/null`: every call stops the loop twice for ptrace.",
    )

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["strace", "-f", "-qq", "-o", "/dev/null", *argv]
