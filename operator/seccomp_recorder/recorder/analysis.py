"""Turn what the kernel recorded per mount namespace into syscall names per architecture.

A mount namespace is one of:
- a container: the first execve in it came from a known OCI runtime (runc, crun),
  or a seccomp filter was installed in it before that execve. Its profile is the
  workload's calls plus the runtime's post-filter calls, and none of the runtime's
  setup calls (mount, pivot_root, sethostname...).
- the command's own tasks: everything else, including tasks that entered a new mount
  namespace with unshare(2) or setns(2). All their calls count.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from seccomp_recorder.models.profile import Architecture
from seccomp_recorder.recorder.maps import Abi, Phase
from seccomp_recorder.recorder.recorder import NamespaceRecording
from seccomp_recorder.recorder.runtimes import Runtime, identify_runtime, runtime_calls
from seccomp_recorder.syscalls import tables

logger = logging.getLogger(__name__)


class FilterPoint(enum.StrEnum):
    """Method by which the end of a container runtime's setup was found."""

    # A seccomp filter was installed in the container: calls after it are filtered.
    SECCOMP_FILTER = "seccomp-filter"
    # No filter was installed; the runtime's measured post-filter calls were added.
    RUNTIME_CALLS = "runtime-calls"
    # Neither: an unknown runtime ran unconfined, so only the workload's calls after its
    # execve are kept, and the runtime's post-filter calls may be missing.
    EXECVE_ONLY = "execve-only"
    # Not a container: every call of the command's own tasks counts.
    COMMAND = "command"
    # The container started before the recorder attached: its phase is unknown, so all
    # its calls count, plus the post-filter calls of the runtime its pod status names.
    ATTACHED_LATE = "attached-after-start"


class Target(enum.StrEnum):
    """Selection of the mount namespaces a profile is made from."""

    AUTO = "auto"  # containers when any were recorded, else the command
    COMMAND = "command"
    CONTAINERS = "containers"


@dataclass(frozen=True)
class NamespaceSummary:
    mntns: int
    filter_point: FilterPoint
    runtime: Runtime | None = None
    no_new_privs: bool | None = None

    def describe(self) -> str:
        """Return e.g. `seccomp-filter/runc/no-new-privileges`, for annotations and results."""
        parts = [self.filter_point.value]
        if self.runtime is not None:
            parts.append(self.runtime.value)
        if self.no_new_privs and self.filter_point is not FilterPoint.COMMAND:
            parts.append("no-new-privileges")
        return "/".join(parts)


def describe_sources(recorded: RecordedSyscalls) -> str:
    """Return the distinct descriptions of what a profile was made from, sorted and joined."""
    return ",".join(sorted({source.describe() for source in recorded.sources}))


@dataclass
class RecordedSyscalls:
    """Syscall names by architecture, ready to become a profile."""

    names: dict[Architecture, set[str]] = field(default_factory=dict)
    unknown_numbers: dict[Architecture, set[int]] = field(default_factory=dict)
    sources: list[NamespaceSummary] = field(default_factory=list)

    def all_names(self) -> set[str]:
        return set().union(*self.names.values()) if self.names else set()

    def architectures(self) -> list[Architecture]:
        """Return the native architecture first, then every other one that made a call."""
        native = tables.native_architecture()
        others = sorted(arch for arch in self.names if arch != native)
        return [native, *others]


def abi_architecture(abi: Abi, native: Architecture | None = None) -> Architecture:
    """Return the architecture whose table names calls made through `abi` on this machine."""
    native = native or tables.native_architecture()
    if abi is Abi.NATIVE:
        return native
    companions = tables.companion_architectures(native)
    if abi is Abi.X32 and Architecture.X32 in companions:
        return Architecture.X32
    if abi is Abi.COMPAT:
        for candidate in companions:
            if candidate is not Architecture.X32:
                return candidate
    raise ValueError(f"no syscall table for ABI {abi.name} on {native}")


def is_container(recording: NamespaceRecording, launcher_mntns: int) -> bool:
    if recording.mntns == launcher_mntns or recording.exec_record is None:
        return False
    if recording.exec_record.filtered:
        return True
    return identify_runtime(recording.exec_record.runtime_comm) is not None


def _container_summary(recording: NamespaceRecording) -> NamespaceSummary:
    record = recording.exec_record
    assert record is not None
    runtime = identify_runtime(record.runtime_comm)
    if record.filtered:
        point = FilterPoint.SECCOMP_FILTER
    elif runtime is not None:
        point = FilterPoint.RUNTIME_CALLS
    else:
        # NOTE: is_container() admits only namespaces with a seccomp filter or a known
        # runtime, so analyse() never reaches this branch: an unknown runtime running
        # unconfined is counted as the command's own namespace, every phase included.
        point = FilterPoint.EXECVE_ONLY
    return NamespaceSummary(recording.mntns, point, runtime, record.no_new_privs)


def _add_numbers(
    result: RecordedSyscalls, recording: NamespaceRecording, phases: Iterable[Phase]
) -> None:
    for phase in phases:
        for abi, numbers in recording.numbers.get(phase, {}).items():
            architecture = abi_architecture(abi)
            for number in numbers:
                name = tables.syscall_name(architecture, number)
                if name is None:
                    result.unknown_numbers.setdefault(architecture, set()).add(number)
                else:
                    result.names.setdefault(architecture, set()).add(name)


def _add_container(result: RecordedSyscalls, recording: NamespaceRecording) -> None:
    summary = _container_summary(recording)
    result.sources.append(summary)
    _add_numbers(result, recording, (Phase.FILTERED, Phase.WORKLOAD))

    native = tables.native_architecture()
    native_names = result.names.setdefault(native, set())
    if summary.runtime is not None:
        native_names |= runtime_calls(summary.runtime).post_filter_calls(bool(summary.no_new_privs))
    else:
        # The entrypoint's execve itself is filtered whatever the runtime.
        native_names.add("execve")
    if summary.filter_point is FilterPoint.EXECVE_ONLY:
        logger.warning(
            "mount namespace %d: unknown container runtime and no seccomp filter while "
            "recording, so the runtime's own calls after its filter point are not in the "
            "profile; record under an allow-all seccomp profile to find that point exactly",
            recording.mntns,
        )


def analyse(
    recordings: dict[int, NamespaceRecording],
    launcher_mntns: int,
    target: Target = Target.AUTO,
) -> RecordedSyscalls:
    """Collect the names a profile needs from the recordings of one command run."""
    containers = [r for r in recordings.values() if is_container(r, launcher_mntns)]
    others = [r for r in recordings.values() if not is_container(r, launcher_mntns)]
    if target is Target.AUTO:
        target = Target.CONTAINERS if containers else Target.COMMAND

    result = RecordedSyscalls()
    if target is Target.CONTAINERS:
        for recording in sorted(containers, key=lambda r: r.mntns):
            _add_container(result, recording)
        return result

    for recording in sorted(others, key=lambda r: r.mntns):
        result.sources.append(NamespaceSummary(recording.mntns, FilterPoint.COMMAND))
        if recording.mntns == launcher_mntns:
            # SETUP here is the launcher between its fork and the command's execve, the
            # point where `seccomp-recorder run` installs the filter: only execve follows.
            _add_numbers(result, recording, (Phase.FILTERED, Phase.WORKLOAD))
            result.names.setdefault(tables.native_architecture(), set()).add("execve")
        else:
            # Entered with unshare(2) or setns(2) by the command's own tasks: all theirs.
            _add_numbers(result, recording, (Phase.SETUP, Phase.FILTERED, Phase.WORKLOAD))
    return result


def container_syscalls(
    recording: NamespaceRecording,
    *,
    runtime_hint: Runtime | None = None,
    no_new_privs_hint: bool = False,
) -> RecordedSyscalls:
    """Collect the names the profile of one pod container needs (the node agent's case).

    With no execve seen, the container started before the recorder attached. Its tasks
    were then counted as the workload's from their first call, and the runtime named by
    `runtime_hint` (from the pod's `containerID`) adds its post-filter calls.
    """
    result = RecordedSyscalls()
    if recording.exec_record is not None:
        _add_container(result, recording)
        return result

    result.sources.append(
        NamespaceSummary(
            recording.mntns, FilterPoint.ATTACHED_LATE, runtime_hint, no_new_privs_hint
        )
    )
    _add_numbers(result, recording, (Phase.SETUP, Phase.FILTERED, Phase.WORKLOAD))
    native_names = result.names.setdefault(tables.native_architecture(), set())
    native_names.add("execve")
    if runtime_hint is not None:
        native_names |= runtime_calls(runtime_hint).post_filter_calls(no_new_privs_hint)
    return result
