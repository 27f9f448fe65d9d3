"""recorder.analysis on hand-built recordings: which namespaces count and which calls a profile gets."""

from __future__ import annotations

import logging

import pytest

from seccomp_recorder.models.profile import Architecture
from seccomp_recorder.recorder import analysis
from seccomp_recorder.recorder.analysis import (
    FilterPoint,
    NamespaceSummary,
    Target,
    abi_architecture,
    analyse,
    is_container,
)
from seccomp_recorder.recorder.maps import X32_SYSCALL_BIT, Abi, Phase
from seccomp_recorder.recorder.recorder import ExecRecord, NamespaceRecording
from seccomp_recorder.recorder.runtimes import Runtime, runtime_calls
from seccomp_recorder.syscalls import tables

LAUNCHER = 4026531840
CONTAINER = 4026532001
OTHER_CONTAINER = 4026532002
UNSHARED = 4026532100

X86_64 = Architecture.X86_64


@pytest.fixture(autouse=True)
def x86_64_native(monkeypatch: pytest.MonkeyPatch) -> None:
    """Analyse as on x86_64 whatever this machine is, so the numbers below mean one thing."""
    monkeypatch.setattr(tables, "native_architecture", lambda *_: X86_64)


def number(name: str, architecture: Architecture = X86_64) -> int:
    found = tables.syscall_number(architecture, name)
    assert found is not None, f"{name} has no number on {architecture}"
    return found


def recording(
    mntns: int,
    calls: dict[Phase, list[str]],
    exec_record: ExecRecord | None = None,
) -> NamespaceRecording:
    result = NamespaceRecording(mntns, exec_record=exec_record)
    for phase, names in calls.items():
        for name in names:
            result.add(phase, Abi.NATIVE, number(name))
    return result


def runtime_exec(comm: str, *, filtered: bool = False, no_new_privs: bool = True) -> ExecRecord:
    return ExecRecord(pid=100, filtered=filtered, no_new_privs=no_new_privs, runtime_comm=comm)


# What a runtime does in a container's namespace before the filter would be installed.
RUNTIME_SETUP = ["mount", "pivot_root", "sethostname"]


def container_recording(
    mntns: int = CONTAINER,
    *,
    comm: str = "runc:[2:INIT]",
    filtered: bool = False,
    no_new_privs: bool = True,
) -> NamespaceRecording:
    return recording(
        mntns,
        {
            Phase.SETUP: RUNTIME_SETUP,
            Phase.FILTERED: ["getppid"] if filtered else [],
            Phase.WORKLOAD: ["read", "nanosleep"],
        },
        runtime_exec(comm, filtered=filtered, no_new_privs=no_new_privs),
    )  # fmt: skip


# The command's calls: none of them is in any runtime's post-filter calls.
COMMAND_CALLS = {"umask", "getrusage"}


def command_recording(mntns: int = LAUNCHER) -> NamespaceRecording:
    # SETUP in the launcher's namespace is the launcher between fork and execve.
    return recording(mntns, {Phase.SETUP: ["read", "close"], Phase.WORKLOAD: sorted(COMMAND_CALLS)})


class TestIsContainer:
    def test_launcher_namespace_never_container(self) -> None:
        launcher = container_recording(LAUNCHER)
        assert not is_container(launcher, LAUNCHER)

    def test_namespace_without_exec_not_container(self) -> None:
        assert not is_container(recording(UNSHARED, {Phase.SETUP: ["read"]}), LAUNCHER)

    @pytest.mark.parametrize("comm", ["runc:[2:INIT]", "runc:[1:CHILD]", "crun"])
    def test_known_runtime_container(self, comm: str) -> None:
        assert is_container(container_recording(comm=comm), LAUNCHER)

    def test_filtered_unknown_runtime_container(self) -> None:
        assert is_container(container_recording(comm="youki", filtered=True), LAUNCHER)

    def test_unfiltered_unknown_process_not_container(self) -> None:
        # A command's own process that unshared its mount namespace and then executed.
        assert not is_container(container_recording(comm="bash"), LAUNCHER)


class TestCommand:
    def test_launcher_setup_excluded_and_execve_added(self) -> None:
        result = analyse({LAUNCHER: command_recording()}, LAUNCHER)

        assert result.names == {X86_64: COMMAND_CALLS | {"execve"}}
        assert result.sources == [NamespaceSummary(LAUNCHER, FilterPoint.COMMAND)]

    def test_unshared_namespace_counts_every_phase(self) -> None:
        unshared = recording(
            UNSHARED,
            {Phase.SETUP: ["mount"], Phase.FILTERED: ["getppid"], Phase.WORKLOAD: ["sysinfo"]},
        )

        result = analyse({LAUNCHER: command_recording(), UNSHARED: unshared}, LAUNCHER)

        assert result.all_names() == COMMAND_CALLS | {"execve", "mount", "getppid", "sysinfo"}
        assert [source.mntns for source in result.sources] == [LAUNCHER, UNSHARED]

    def test_unfiltered_unknown_process_counts_every_phase(self) -> None:
        exec_in_namespace = container_recording(UNSHARED, comm="bash")

        result = analyse({LAUNCHER: command_recording(), UNSHARED: exec_in_namespace}, LAUNCHER)

        assert set(RUNTIME_SETUP) <= result.all_names()
        assert {source.filter_point for source in result.sources} == {FilterPoint.COMMAND}


class TestContainers:
    def test_auto_target_prefers_containers(self) -> None:
        result = analyse(
            {LAUNCHER: command_recording(), CONTAINER: container_recording()}, LAUNCHER
        )

        assert not COMMAND_CALLS & result.all_names()
        assert {"read", "nanosleep"} <= result.all_names()
        assert [source.mntns for source in result.sources] == [CONTAINER]

    def test_runtime_setup_calls_excluded(self) -> None:
        result = analyse({CONTAINER: container_recording()}, LAUNCHER)

        assert {"read", "nanosleep"} <= result.all_names()
        assert not set(RUNTIME_SETUP) & result.all_names()

    @pytest.mark.parametrize("runtime", list(Runtime))
    @pytest.mark.parametrize("no_new_privs", [True, False], ids=["nnp", "no-nnp"])
    def test_runtime_calls_added(self, runtime: Runtime, no_new_privs: bool) -> None:
        container = container_recording(comm=runtime.value, no_new_privs=no_new_privs)

        result = analyse({CONTAINER: container}, LAUNCHER)

        expected = runtime_calls(runtime).post_filter_calls(no_new_privs)
        assert result.names[X86_64] == {"read", "nanosleep"} | expected
        assert result.sources == [
            NamespaceSummary(CONTAINER, FilterPoint.RUNTIME_CALLS, runtime, no_new_privs)
        ]

    def test_no_new_privs_changes_runc_calls(self) -> None:
        with_nnp = analyse({CONTAINER: container_recording(no_new_privs=True)}, LAUNCHER)
        without_nnp = analyse({CONTAINER: container_recording(no_new_privs=False)}, LAUNCHER)

        # Without no_new_privs runc changes user and capabilities after its filter.
        assert {"setuid", "setgid", "capset"} <= without_nnp.all_names()
        assert not {"setuid", "setgid", "capset"} & with_nnp.all_names()

    def test_filtered_container_keeps_filtered_phase(self) -> None:
        container = container_recording(comm="runc:[2:INIT]", filtered=True)

        result = analyse({CONTAINER: container}, LAUNCHER)

        assert "getppid" in result.all_names()
        assert result.sources[0].filter_point is FilterPoint.SECCOMP_FILTER
        assert result.sources[0].runtime is Runtime.RUNC

    def test_filtered_unknown_runtime_not_warned(self, caplog: pytest.LogCaptureFixture) -> None:
        container = container_recording(comm="youki", filtered=True)

        with caplog.at_level(logging.WARNING, logger=analysis.__name__):
            result = analyse({CONTAINER: container}, LAUNCHER)

        assert result.names[X86_64] == {"getppid", "read", "nanosleep", "execve"}
        assert result.sources[0].filter_point is FilterPoint.SECCOMP_FILTER
        assert caplog.records == []

    def test_several_containers_merged_in_order(self) -> None:
        second = container_recording(OTHER_CONTAINER, comm="crun")

        result = analyse({OTHER_CONTAINER: second, CONTAINER: container_recording()}, LAUNCHER)

        assert [source.mntns for source in result.sources] == [CONTAINER, OTHER_CONTAINER]
        assert [source.runtime for source in result.sources] == [Runtime.RUNC, Runtime.CRUN]


class TestTarget:
    def test_command_target_ignores_containers(self) -> None:
        recordings = {LAUNCHER: command_recording(), CONTAINER: container_recording()}

        result = analyse(recordings, LAUNCHER, Target.COMMAND)

        assert result.all_names() == COMMAND_CALLS | {"execve"}

    def test_containers_target_without_containers_empty(self) -> None:
        result = analyse({LAUNCHER: command_recording()}, LAUNCHER, Target.CONTAINERS)

        assert result.all_names() == set()
        assert result.sources == []

    def test_auto_target_without_containers_is_command(self) -> None:
        result = analyse({LAUNCHER: command_recording()}, LAUNCHER, Target.AUTO)

        assert result.sources[0].filter_point is FilterPoint.COMMAND


class TestArchitectures:
    def test_abi_architectures_on_x86_64(self) -> None:
        assert abi_architecture(Abi.NATIVE) is X86_64
        assert abi_architecture(Abi.COMPAT) is Architecture.X86
        assert abi_architecture(Abi.X32) is Architecture.X32

    def test_abi_architectures_on_aarch64(self) -> None:
        assert abi_architecture(Abi.COMPAT, Architecture.AARCH64) is Architecture.ARM
        with pytest.raises(ValueError, match="no syscall table for ABI X32"):
            abi_architecture(Abi.X32, Architecture.AARCH64)

    def test_compat_and_x32_named_by_own_table(self) -> None:
        command = command_recording()
        command.add(Phase.WORKLOAD, Abi.COMPAT, number("getpid", Architecture.X86))
        command.add(Phase.WORKLOAD, Abi.X32, number("getpid", Architecture.X32))

        result = analyse({LAUNCHER: command}, LAUNCHER)

        # i386 getpid is 20, which is writev on x86_64, and x32 numbers carry the x32 bit.
        assert number("getpid", Architecture.X86) == 20
        assert number("getpid", Architecture.X32) & X32_SYSCALL_BIT
        assert result.names[Architecture.X86] == {"getpid"}
        assert result.names[Architecture.X32] == {"getpid"}
        assert "writev" not in result.all_names()
        assert result.architectures() == [X86_64, Architecture.X32, Architecture.X86]

    def test_unknown_numbers_collected_per_architecture(self) -> None:
        command = command_recording()
        command.add(Phase.WORKLOAD, Abi.NATIVE, 1000)
        command.add(Phase.WORKLOAD, Abi.COMPAT, 999)
        # A launcher SETUP call with no name is not the command's and is not reported.
        command.add(Phase.SETUP, Abi.NATIVE, 1001)

        result = analyse({LAUNCHER: command}, LAUNCHER)

        assert result.unknown_numbers == {X86_64: {1000}, Architecture.X86: {999}}
        assert result.all_names() == COMMAND_CALLS | {"execve"}
        assert "" not in result.all_names()

    def test_only_native_architecture_when_nothing_else(self) -> None:
        result = analyse({LAUNCHER: command_recording()}, LAUNCHER)

        assert result.architectures() == [X86_64]
