"""The `seccomp-recorder diff` subcommand: what a new profile permits beyond the old."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from seccomp_recorder.cli.main import main


def profile(
    *names: str, architectures: tuple[str, ...] = ("SCMP_ARCH_X86_64",), **fields: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": list(architectures),
        "syscalls": [{"names": list(names), "action": "SCMP_ACT_ALLOW"}] if names else [],
    }
    document.update(fields)
    return document


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def write(path: Path, document: dict[str, Any]) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def run_diff(tmp_path: Path, old: dict[str, Any], new: dict[str, Any], *options: str) -> int:
    return main(
        ["diff", *options, write(tmp_path / "old.json", old), write(tmp_path / "new.json", new)]
    )


def test_equal_profiles_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_diff(tmp_path, profile("read", "write"), profile("write", "read"))

    assert status == 0
    assert capsys.readouterr().out == ""


def test_added_calls_fail_and_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_diff(tmp_path, profile("read"), profile("read", "openat", "close"))

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.splitlines() == ["+ close", "+ openat"]
    assert "permits more than" in captured.err


def test_removed_calls_fail_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_diff(tmp_path, profile("read", "write"), profile("read"))

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.splitlines() == ["- write"]
    assert "--allow-shrink" in captured.err


def test_allow_shrink_passes_removed_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_diff(tmp_path, profile("read", "write"), profile("read"), "--allow-shrink")

    assert status == 0
    assert capsys.readouterr().out.splitlines() == ["- write"]


def test_allow_shrink_still_fails_growth(tmp_path: Path) -> None:
    status = run_diff(tmp_path, profile("read", "write"), profile("read", "mmap"), "--allow-shrink")
    assert status == 1


def test_new_architecture_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = profile("read", architectures=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"))

    status = run_diff(tmp_path, profile("read"), new)

    assert status == 1
    assert capsys.readouterr().out.splitlines() == ["+ architecture SCMP_ARCH_X86"]


def test_wider_default_action_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = profile("read", defaultAction="SCMP_ACT_LOG")

    status = run_diff(tmp_path, profile("read"), new)

    assert status == 1
    assert "default action SCMP_ACT_ERRNO -> SCMP_ACT_LOG" in capsys.readouterr().out


def test_conditional_and_logged_rules_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = profile("read")
    new["syscalls"] += [
        {
            "names": ["ioctl"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 1, "value": 21505, "op": "SCMP_CMP_EQ"}],
        },
        {"names": ["ptrace"], "action": "SCMP_ACT_LOG"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ]

    status = run_diff(tmp_path, profile("read"), new)

    assert status == 1
    assert capsys.readouterr().out.splitlines() == ["+ ioctl when arg1 == 21505", "+ ptrace"]


def conditional(name: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    """Return an allow-list profile that allows `name` under each of `conditions`."""
    document = profile()
    document["syscalls"] = [
        {"names": [name], "action": "SCMP_ACT_ALLOW", "args": [condition]}
        for condition in conditions
    ]
    return document


ARG0_IS_1 = {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}
ARG0_IS_2 = {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}


def test_dropped_condition_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_diff(tmp_path, conditional("ptrace", ARG0_IS_1), profile("ptrace"), "--allow-shrink")

    assert status == 1
    assert capsys.readouterr().out.splitlines() == ["+ ptrace without argument conditions"]


def test_added_condition_set_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = conditional("ptrace", ARG0_IS_1)
    new = conditional("ptrace", ARG0_IS_1, ARG0_IS_2)

    status = run_diff(tmp_path, old, new)

    assert status == 1
    assert capsys.readouterr().out.splitlines() == ["+ ptrace when arg0 == 2"]


def test_narrowed_call_is_a_shrink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    masked = {"index": 2, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}
    old = profile("ptrace")
    new = conditional("ptrace", masked)

    shrink_fails = run_diff(tmp_path, old, new)
    lines = capsys.readouterr().out.splitlines()
    allowed = run_diff(tmp_path, old, new, "--allow-shrink")

    assert shrink_fails == 1
    assert lines == ["- ptrace without argument conditions"]
    assert allowed == 0


def test_same_conditions_in_other_order_pass(tmp_path: Path) -> None:
    arg1_at_least_5 = {"index": 1, "value": 5, "op": "SCMP_CMP_GE"}
    old = profile()
    old["syscalls"] = [
        {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [ARG0_IS_1, arg1_at_least_5]}
    ]
    new = profile()
    new["syscalls"] = [
        {"names": ["ioctl"], "action": "SCMP_ACT_LOG", "args": [arg1_at_least_5, ARG0_IS_1]}
    ]

    assert run_diff(tmp_path, old, new) == 0


def test_kubernetes_and_oci_forms_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    committed = {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": "app"},
        "spec": profile("read", "write"),
    }
    old_path = tmp_path / "app.yaml"
    old_path.write_text(yaml.safe_dump(committed))

    status = main(["diff", str(old_path), write(tmp_path / "new.json", profile("read", "write"))])

    assert status == 0


def test_invalid_profile_exits_2(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = profile("read", defaultAction="SCMP_ACT_NONSENSE")

    status = run_diff(tmp_path, profile("read"), broken)

    assert status == 2
    assert "new.json" in errors_logged(caplog)[0]
    assert "SCMP_ACT_NONSENSE" in errors_logged(caplog)[0]


def test_missing_file_exits_2(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    status = main(
        ["diff", str(tmp_path / "absent.json"), write(tmp_path / "new.json", profile("read"))]
    )

    assert status == 2
    assert "cannot read the file" in errors_logged(caplog)[0]


def test_profile_without_architectures_uses_native(tmp_path: Path) -> None:
    old = profile("read", architectures=())
    new = profile("read", architectures=("SCMP_ARCH_X86_64",))

    status = run_diff(tmp_path, old, new, "--native-architecture", "SCMP_ARCH_X86_64")

    assert status == 0


def test_standard_input_twice_exits_2(caplog: pytest.LogCaptureFixture) -> None:
    status = main(["diff", "-", "-"])

    assert status == 2
    assert any("both -" in message for message in errors_logged(caplog))
