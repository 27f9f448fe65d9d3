"""The `seccomp-recorder validate` subcommand."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest
import yaml

from seccomp_recorder.cli.main import main
from seccomp_recorder.cli.profile_files import MAX_INPUT_BYTES

VALID = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ],
}


def write(path: Path, document: object) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def output_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_valid_file_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "ok.json", VALID)
    assert main(["validate", path]) == 0
    assert output_lines(capsys) == [f"{path}: valid"]


def test_every_problem_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path / "bad.json",
        {
            **VALID,
            "syscalls": [
                {"names": ["read", "foo"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["bar"], "action": "SCMP_ACT_ALLOW"},
            ],
        },
    )
    assert main(["validate", path]) == 1
    lines = output_lines(capsys)
    assert lines[0].startswith(f"{path}: syscalls: warning: clone3 is denied")
    assert lines[1].startswith(f'{path}: syscalls[0].names: syscall "foo" is not known on')
    assert lines[2].startswith(f'{path}: syscalls[1].names: syscall "bar" is not known on')
    assert len(lines) == 3


def test_every_model_error_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path / "bad.json",
        {
            "defaultAktion": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}],
        },
    )
    assert main(["validate", path]) == 1
    lines = output_lines(capsys)
    assert f"{path}: defaultAction: required field is missing: add it" in lines
    assert any(
        line.startswith(f"{path}: syscalls[0].names: the rule names no syscall") for line in lines
    )
    assert any(
        line.startswith(f'{path}: defaultAktion: unknown field "defaultAktion"') for line in lines
    )


def test_kubernetes_paths_start_with_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": "redis"},
        "spec": {**VALID, "syscalls": [{"names": ["clone3", "foo"], "action": "SCMP_ACT_ALLOW"}]},
    }
    path = tmp_path / "redis.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["validate", str(path)]) == 1
    assert output_lines(capsys)[0].startswith(f'{path}: spec.syscalls[0].names: syscall "foo"')


def test_warnings_pass_unless_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "warn.json", {**VALID, "syscalls": VALID["syscalls"][:1]})
    assert main(["validate", path]) == 0
    assert main(["validate", "--strict", path]) == 1


def test_all_files_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    good = write(tmp_path / "good.json", VALID)
    assert main(["validate", str(bad), good]) == 1
    lines = output_lines(capsys)
    assert lines[0].startswith(f"{bad}: line 1, column 2: invalid JSON")
    assert lines[1] == f"{good}: valid"


def test_unreadable_file_exits_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    bad = write(tmp_path / "bad.json", {"defaultAction": "SCMP_ACT_DENY"})
    missing = tmp_path / "missing.json"
    assert main(["validate", bad, str(missing)]) == 2
    assert errors_logged(caplog) == [
        (
            f"{missing}: cannot read the file: No such file or directory: check the path and"
            " its permissions"
        )
    ]
    assert not any(str(missing) in line for line in output_lines(capsys))


def test_oversized_file_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "large.json"
    path.write_bytes(b" " * (MAX_INPUT_BYTES + 1))
    assert main(["validate", str(path)]) == 2
    assert errors_logged(caplog) == [
        f"{path}: the input is larger than 16 MiB, so it is not a profile: check the path"
    ]
    assert output_lines(capsys) == []


def test_oversized_stdin_is_rejected(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(" " * (MAX_INPUT_BYTES + 1)))
    assert main(["validate", "-"]) == 2
    assert errors_logged(caplog)[0].startswith("-: the input is larger than 16 MiB")


def test_unsupported_machine_needs_native_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("os.uname", lambda: os.uname_result(("Linux", "h", "6", "1", "vax")))
    path = write(tmp_path / "ok.json", {**VALID, "architectures": []})

    assert main(["validate", path]) == 2
    assert "pass it with --native-architecture" in errors_logged(caplog)[0].lower()


def test_file_of_max_size_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(VALID)
    path = tmp_path / "padded.json"
    path.write_text(text + " " * (MAX_INPUT_BYTES - len(text)))
    assert main(["validate", str(path)]) == 0
    assert output_lines(capsys) == [f"{path}: valid"]


def test_native_architecture_option_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["clone3", "open"], "action": "SCMP_ACT_ALLOW"}],
    }
    path = write(tmp_path / "open.json", document)
    assert main(["validate", "--native-architecture", "SCMP_ARCH_X86_64", path]) == 0
    assert main(["validate", "--native-architecture", "SCMP_ARCH_AARCH64", path]) == 1
    assert 'syscall "open" is not known on SCMP_ARCH_AARCH64' in output_lines(capsys)[-1]


def test_stdin_is_read_for_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(VALID)))
    assert main(["validate", "-"]) == 0
    assert output_lines(capsys) == ["-: valid"]


def test_no_file_is_usage_error() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2


def test_oversized_filter_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One rule per ioctl request number compiles to about one BPF instruction each.
    rules = [
        {
            "names": ["ioctl"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 1, "value": request, "op": "SCMP_CMP_EQ"}],
        }
        for request in range(4200)
    ]
    path = write(tmp_path / "large.json", {**VALID, "syscalls": [*VALID["syscalls"], *rules]})

    assert main(["validate", path]) == 0
    lines = output_lines(capsys)
    assert main(["validate", "--strict", path]) == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: syscalls: warning: the compiled filter has ")
    assert "more than the kernel's limit of 4096 (BPF_MAXINSNS)" in lines[0]
    assert "use fewer rules with argument conditions" in lines[0]
