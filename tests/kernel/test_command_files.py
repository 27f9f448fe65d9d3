"""Command files that the kernel does not execute directly, under `record` and `run`.

A file without a #! line runs through /bin/sh, as POSIX execvp and shells run it. A file
whose interpreter is missing cannot run at all: `record` then exits 126 and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_helpers import Cli, allowed_names, load_profile

pytestmark = pytest.mark.kernel

EXISTING_BYTES = b"# an earlier profile that a failed run must leave alone\n"


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_record_script_without_shebang(recording_host: None, cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    script = write_script(tmp_path / "script", f"touch {marker}\n")
    profile_path = tmp_path / "script.yaml"

    result = cli.run("record", "-o", str(profile_path), "--", str(script))

    assert result.returncode == 0, result.stderr
    assert marker.exists()
    # touch sets the file times with utimensat, so the shell's child was recorded too.
    assert "utimensat" in allowed_names(load_profile(profile_path))


def test_record_missing_interpreter_writes_nothing(
    recording_host: None, cli: Cli, tmp_path: Path
) -> None:
    script = write_script(tmp_path / "script", "#!/nonexistent/interpreter\ntrue\n")
    output = tmp_path / "profile.yaml"
    output.write_bytes(EXISTING_BYTES)

    result = cli.run("record", "-o", str(output), "--", str(script))

    assert result.returncode == 126, result.stderr
    assert f"cannot execute {script}: No such file or directory" in result.stderr
    assert "its #! line" in result.stderr
    assert output.read_bytes() == EXISTING_BYTES
    assert sorted(tmp_path.iterdir()) == [output, script]


def test_run_script_without_shebang(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    script = write_script(tmp_path / "script", f"touch {marker}\n")
    profile = tmp_path / "allow.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')

    result = cli.run("run", "--profile", str(profile), "--", str(script))

    assert result.returncode == 0, result.stderr
    assert marker.exists()


def test_run_exec_failure_when_write_denied(cli: Cli, tmp_path: Path) -> None:
    script = write_script(tmp_path / "script", "#!/nonexistent/interpreter\ntrue\n")
    profile = tmp_path / "no-write.json"
    profile.write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["write", "writev"],'
        ' "action": "SCMP_ACT_ERRNO"}]}'
    )

    result = cli.run("run", "--profile", str(profile), "--", str(script))

    # The message cannot be written under this profile, but the exit status reports the cause.
    assert result.returncode == 126, result.stderr
