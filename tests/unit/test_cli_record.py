"""The parts of `seccomp-recorder record` that need no kernel: profile annotations, the
default name, and Ctrl-C before the command runs."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Self

import pytest

from seccomp_recorder.cli import convert, record
from seccomp_recorder.cli.main import main
from seccomp_recorder.cli.record import _default_name, profile_annotations
from seccomp_recorder.models.profile import Architecture, ObjectMeta
from seccomp_recorder.recorder.analysis import FilterPoint, NamespaceSummary, RecordedSyscalls
from seccomp_recorder.recorder.runtimes import Runtime

FILTER_POINT = "seccomp-recorder.io/filter-point"
UNKNOWN_SYSCALLS = "seccomp-recorder.io/unknown-syscalls"


def recorded(*sources: NamespaceSummary) -> RecordedSyscalls:
    return RecordedSyscalls(names={Architecture.X86_64: {"read"}}, sources=list(sources))


class TestProfileAnnotations:
    def test_nothing_recorded_no_annotations(self) -> None:
        assert profile_annotations(RecordedSyscalls()) == {}

    def test_command_filter_point(self) -> None:
        annotations = profile_annotations(recorded(NamespaceSummary(1, FilterPoint.COMMAND)))

        assert annotations == {FILTER_POINT: "command"}

    def test_command_never_marked_no_new_privileges(self) -> None:
        source = NamespaceSummary(1, FilterPoint.COMMAND, no_new_privs=True)

        assert profile_annotations(recorded(source)) == {FILTER_POINT: "command"}

    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            (
                NamespaceSummary(1, FilterPoint.RUNTIME_CALLS, Runtime.RUNC, True),
                "runtime-calls/runc/no-new-privileges",
            ),
            (
                NamespaceSummary(1, FilterPoint.RUNTIME_CALLS, Runtime.CRUN, False),
                "runtime-calls/crun",
            ),
            (
                NamespaceSummary(1, FilterPoint.SECCOMP_FILTER, Runtime.RUNC, False),
                "seccomp-filter/runc",
            ),
            (
                NamespaceSummary(1, FilterPoint.SECCOMP_FILTER, None, True),
                "seccomp-filter/no-new-privileges",
            ),
        ],
        ids=["runc-nnp", "crun", "filter-runc", "filter-unknown-runtime"],
    )
    def test_container_filter_point(self, source: NamespaceSummary, expected: str) -> None:
        assert profile_annotations(recorded(source)) == {FILTER_POINT: expected}

    def test_several_sources_sorted_once_each(self) -> None:
        sources = [
            NamespaceSummary(3, FilterPoint.SECCOMP_FILTER, Runtime.RUNC, True),
            NamespaceSummary(1, FilterPoint.RUNTIME_CALLS, Runtime.CRUN, True),
            NamespaceSummary(2, FilterPoint.SECCOMP_FILTER, Runtime.RUNC, True),
        ]

        annotations = profile_annotations(recorded(*sources))

        assert annotations[FILTER_POINT] == (
            "runtime-calls/crun/no-new-privileges,seccomp-filter/runc/no-new-privileges"
        )

    def test_unknown_numbers_sorted(self) -> None:
        syscalls = recorded(NamespaceSummary(1, FilterPoint.COMMAND))
        syscalls.unknown_numbers = {
            Architecture.X86_64: {1001, 1000},
            Architecture.X86: {999},
            Architecture.X32: {0x40000000 | 1000},
        }

        annotations = profile_annotations(syscalls)

        assert annotations[UNKNOWN_SYSCALLS] == (
            "SCMP_ARCH_X32:1073742824,SCMP_ARCH_X86:999,SCMP_ARCH_X86_64:1000,SCMP_ARCH_X86_64:1001"
        )

    def test_no_unknown_numbers_no_annotation(self) -> None:
        annotations = profile_annotations(recorded(NamespaceSummary(1, FilterPoint.COMMAND)))

        assert UNKNOWN_SYSCALLS not in annotations


class TestDefaultName:
    @pytest.mark.parametrize(
        ("command", "expected"),
        [
            ("/usr/bin/redis-server", "redis-server"),
            ("./My_Tests.sh", "my-tests-sh"),
            ("python3.11", "python3-11"),
            ("--weird--", "weird"),
            ("___", "profile"),
            ("/usr/bin/", "profile"),
        ],
    )
    def test_name_from_command(self, command: str, expected: str) -> None:
        assert _default_name([command, "--flag"]) == expected

    def test_long_name_cut_to_63_characters(self) -> None:
        name = _default_name(["a" * 62 + "-b" * 10])

        assert name == "a" * 62
        assert len(name) <= 63

    @pytest.mark.parametrize("command", ["/usr/bin/redis-server", "./My_Tests.sh", "X" * 300])
    def test_name_valid_for_kubernetes(self, command: str) -> None:
        ObjectMeta(name=_default_name([command]))


class InterruptedRecorder:
    """A Recorder stand-in that gets SIGINT while it loads, before the command runs."""

    def __init__(self, *_arguments: object, **_keywords: object) -> None:
        pass

    def __enter__(self) -> Self:
        os.kill(os.getpid(), signal.SIGINT)
        return self

    def __exit__(self, *_exception: object) -> None:
        pass


class TestInterrupt:
    def test_ctrl_c_before_command_exits_130(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
    ) -> None:
        monkeypatch.setattr(record, "Recorder", InterruptedRecorder)
        output = tmp_path / "profile.yaml"
        marker = tmp_path / "marker"

        status = main(["record", "-o", str(output), "--", "touch", str(marker)])

        assert status == 130
        assert [entry.getMessage() for entry in caplog.records] == [
            "interrupted by SIGINT (Ctrl-C), so no profile is written"
        ]
        assert not output.exists()
        assert not marker.exists(), "the command ran after Ctrl-C"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def test_ctrl_c_in_other_subcommand_exits_130(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        def interrupted(_path: str) -> str:
            raise KeyboardInterrupt

        monkeypatch.setattr(convert, "read_input", interrupted)

        assert main(["convert", "profile.json"]) == 130
        assert [entry.getMessage() for entry in caplog.records] == [
            "interrupted by SIGINT (Ctrl-C)"
        ]


class TestOptionValues:
    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            (["-o", ""], "argument -o/--output: the path is empty: name a file, or - for"),
            (["--name", ""], 'argument --name: invalid name "": use at most 250 lower-case'),
            (["--name", "My_Tests"], 'argument --name: invalid name "My_Tests"'),
            (
                ["--name", "a" * 251],
                f'argument --name: invalid name "{"a" * 251}": use at most 250',
            ),
            (["--namespace", ""], 'argument --namespace: invalid namespace "": use at most 63'),
        ],
        ids=["empty-output", "empty-name", "invalid-name", "long-name", "empty-namespace"],
    )
    def test_invalid_value_rejected_before_recording(
        self,
        arguments: list[str],
        message: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setattr(record, "Recorder", InterruptedRecorder)

        with pytest.raises(SystemExit) as caught:
            main(["record", *arguments, "--", "true"])

        assert caught.value.code == 2
        assert f"seccomp-recorder record: error: {message}" in capsys.readouterr().err


def test_output_in_proc_rejected_before_recording(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The recorder stand-in would end `record` with 130 if the command were started.
    monkeypatch.setattr(record, "Recorder", InterruptedRecorder)

    status = main(["record", "-o", "/proc/version", "--", "true"])

    assert status == 2
    assert "cannot write /proc/version" in caplog.text
    assert "choose another path" in caplog.text


class TestSharedStdout:
    """The warning when the profile and the command's output share a redirected stdout."""

    def warnings_for(
        self,
        output_options: list[str],
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> list[str]:
        # The recorder stand-in stops `record` before the command runs.
        monkeypatch.setattr(record, "Recorder", InterruptedRecorder)
        assert main(["record", *output_options, "--", "true"]) == 130
        return [entry.getMessage() for entry in caplog.records if entry.levelname == "WARNING"]

    def test_default_output_redirected_warns(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        warnings = self.warnings_for([], monkeypatch, caplog)

        assert len(warnings) == 1
        assert warnings[0].startswith("the profile goes to standard output, which the command")
        assert "pass -o FILE to keep them apart" in warnings[0]

    @pytest.mark.parametrize("options", [["-o", "-"], ["-o", "profile.yaml"]], ids=["dash", "file"])
    def test_explicit_output_does_not_warn(
        self,
        options: list[str],
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        tmp_path: Path,
    ) -> None:
        monkeypatch.chdir(tmp_path)

        assert self.warnings_for(options, monkeypatch, caplog) == []

    def test_terminal_output_does_not_warn(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

        assert self.warnings_for([], monkeypatch, caplog) == []
