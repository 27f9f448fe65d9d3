"""The `seccomp-recorder` command's error and warning lines, as a user sees them on stderr.

Each case runs the command as a process, so the real logging setup of `main` formats
the lines: `seccomp-recorder SUBCOMMAND: error: message`, as argparse writes its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seccomp_recorder.cli import main as cli_main

CLI = (sys.executable, "-m", "seccomp_recorder.cli.main")
# A profile that denies clone3 with EPERM, which every subcommand that checks warns about.
WARNED_PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
}


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *arguments],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("subcommand", "arguments"),
    [
        ("convert", ["{missing}"]),
        ("validate", ["{missing}"]),
        ("diff", ["{missing}", "{missing}"]),
        ("run", ["--profile", "{missing}", "--", "true"]),
    ],
)
def test_error_line_names_subcommand(
    subcommand: str, arguments: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.json"

    result = run_cli(subcommand, *(argument.format(missing=missing) for argument in arguments))

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"seccomp-recorder {subcommand}: error: {missing}: cannot read the file: No such file"
        " or directory: check the path and its permissions"
    )


def test_record_error_line_names_subcommand() -> None:
    result = run_cli("record", "--")

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("seccomp-recorder record: error: no command given")


def test_usage_error_has_same_form() -> None:
    result = run_cli("convert", "--to", "xml", "profile.json")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        "seccomp-recorder convert: error: argument --to: invalid choice: 'xml'"
    )


def test_warning_line_names_level_once(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(WARNED_PROFILE))

    result = run_cli("convert", "--name", "p", str(profile))

    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(
        f"seccomp-recorder convert: warning: {profile}: syscalls: clone3 is denied"
    )
    assert result.stderr.count("warning:") == 1


def test_ctrl_c_wrapped_by_class_creation_exits_130(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def interrupted_import(_argv: object) -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise RuntimeError("Error calling __set_name__ on 'PydanticDescriptorProxy'") from interrupt

    monkeypatch.setattr(cli_main, "_run_subcommand", interrupted_import)

    assert cli_main.main([]) == 130
    assert "interrupted by SIGINT" in caplog.text


def test_other_runtime_errors_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_argv: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli_main, "_run_subcommand", broken)

    with pytest.raises(RuntimeError, match="a bug"):
        cli_main.main([])
