"""Bad input to `record` and `run`: a clear message, a non-zero status, nothing written or run.

Where a case has a valid command, the command is `touch MARKER`, so a command
that ran although the input was bad leaves MARKER behind. `record` cases run
once with an output file that already exists, which must keep its bytes, and
once with a new one, which must not be created. Only the unprivileged case needs
root, to switch to another user; the others fail before the recorder would load.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kernel_helpers import Cli

from prerequisites import require

EXISTING_BYTES = b"# an earlier profile that a failed run must leave alone\n"
# Drops every privilege of root: user and group 65534 (nobody), no supplementary
# groups, and no capabilities to inherit.
UNPRIVILEGED = (
    "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
)  # fmt: skip


@dataclass(frozen=True)
class RecordCase:
    id: str
    # Options before `-o FILE`, and the command after it (including `--`).
    options: tuple[str, ...]
    command: tuple[str, ...]
    status: int
    # Fragments of stderr: what failed, with its value, and how to fix it.
    message: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)


MARKER_COMMAND = ("--", "touch", "{marker}")

RECORD_CASES = [
    RecordCase(
        "no-command", (), (), 2, ("no command given", "put the command to record after --")
    ),
    RecordCase(
        "nothing-after-dashes", (), ("--",), 2,
        ("no command given", "put the command to record after --"),
    ),
    RecordCase(
        "command-not-in-path", (), ("--", "no-such-command-seccomp-recorder-test"), 127,
        ("command not found: no-such-command-seccomp-recorder-test", "give its full path"),
    ),
    RecordCase(
        "command-path-missing", (), ("--", "/nonexistent/command"), 127,
        ("command not found: /nonexistent/command", "check the path"),
    ),
    RecordCase(
        "command-is-directory", (), ("--", "/tmp"), 126,
        ("command /tmp is a directory, not a program", "give the path of the executable file"),
    ),
    RecordCase(
        "btf-option", ("--btf", "/nonexistent/vmlinux"), MARKER_COMMAND, 125,
        ("kernel BTF not found at /nonexistent/vmlinux", "CONFIG_DEBUG_INFO_BTF=y", "--btf"),
    ),
    RecordCase(
        "btf-environment", (), MARKER_COMMAND, 125,
        ("kernel BTF not found at /nonexistent/vmlinux", "SECCOMP_RECORDER_BTF"),
        environment={"SECCOMP_RECORDER_BTF": "/nonexistent/vmlinux"},
    ),
    RecordCase(
        "bpf-object-option", ("--bpf-object", "/nonexistent/recorder.bpf.o"), MARKER_COMMAND, 125,
        ("BPF object not found at /nonexistent/recorder.bpf.o", "make bpf", "--bpf-object"),
    ),
    RecordCase(
        "bpf-object-environment", (), MARKER_COMMAND, 125,
        ("BPF object not found at /nonexistent/recorder.bpf.o", "make bpf"),
        environment={"SECCOMP_RECORDER_BPF_OBJECT": "/nonexistent/recorder.bpf.o"},
    ),
    RecordCase(
        "default-errno-too-large", ("--default-errno", "4096"), MARKER_COMMAND, 2,
        ("--default-errno: errno 4096 is out of range", "from 0 to 4095"),
    ),
    RecordCase(
        "default-errno-negative", ("--default-errno=-1",), MARKER_COMMAND, 2,
        ("--default-errno: errno -1 is out of range", "from 0 to 4095"),
    ),
    RecordCase(
        "default-errno-not-a-number", ("--default-errno", "EPERM"), MARKER_COMMAND, 2,
        ("--default-errno: invalid errno 'EPERM'", "from 0 to 4095"),
    ),
]  # fmt: skip


@pytest.mark.parametrize("output_exists", [True, False], ids=["existing-output", "new-output"])
@pytest.mark.parametrize("case", RECORD_CASES, ids=lambda case: case.id)
def test_record_rejects_bad_input(
    case: RecordCase, output_exists: bool, cli: Cli, tmp_path: Path
) -> None:
    output = tmp_path / "profile.yaml"
    if output_exists:
        output.write_bytes(EXISTING_BYTES)
    marker = tmp_path / "marker"
    command = [part.format(marker=marker) for part in case.command]

    result = cli.run(
        "record", *case.options, "-o", str(output), *command, environment=case.environment
    )

    assert result.returncode == case.status, result.stderr
    for fragment in case.message:
        assert fragment in result.stderr
    assert result.stdout == ""
    assert not marker.exists(), "the command ran although the input was bad"
    if output_exists:
        assert output.read_bytes() == EXISTING_BYTES
    else:
        assert not output.exists()
    assert list(tmp_path.iterdir()) == ([output] if output_exists else [])


@dataclass(frozen=True)
class RunCase:
    id: str
    # Bytes of the profile file, or None to pass the path of a file that does not exist.
    profile: bytes | None
    status: int
    message: tuple[str, ...]


VALID_HEAD = b'{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], '

RUN_CASES = [
    RunCase("missing-file", None, 2, ("No such file or directory", "check the path")),
    RunCase("invalid-utf8", b"\xff\xfe defaultAction", 2, ("not UTF-8", "JSON or YAML")),
    RunCase(
        "bad-yaml", b"defaultAction: [SCMP_ACT_ERRNO\n", 1,
        ("invalid profile", "invalid YAML", "line 2"),
    ),
    RunCase(
        "unknown-field", VALID_HEAD + b'"syscallz": []}', 1,
        ('unknown field "syscallz"', 'did you mean "syscalls"', "remove it or correct"),
    ),
    RunCase(
        "unknown-syscall",
        VALID_HEAD + b'"syscalls": [{"names": ["read", "frobnicate"], "action": "SCMP_ACT_ALLOW"}]}',
        1,
        ('syscall "frobnicate" is not known on SCMP_ARCH_X86_64', "correct the name or remove it"),
    ),
    RunCase(
        "empty-allow-rule",
        VALID_HEAD + b'"syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}',
        1,
        ("syscalls[0].names", "names no syscall", "add names or delete the rule"),
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda case: case.id)
def test_run_rejects_bad_profile(case: RunCase, cli: Cli, tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    if case.profile is not None:
        profile.write_bytes(case.profile)
    marker = tmp_path / "marker"

    result = cli.run("run", "--profile", str(profile), "--", "touch", str(marker))

    assert result.returncode == case.status, result.stderr
    assert f"seccomp-recorder run: error: {profile}: " in result.stderr
    for fragment in case.message:
        assert fragment in result.stderr
    assert not marker.exists(), "the command ran although the profile was bad"


def test_run_rejects_directory_profile(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    result = cli.run("run", "--profile", str(tmp_path), "--", "touch", str(marker))

    assert result.returncode == 2, result.stderr
    assert f"{tmp_path}: cannot read the file: Is a directory" in result.stderr
    assert "check the path" in result.stderr
    assert not marker.exists()


def test_run_rejects_directory_command(cli: Cli, tmp_path: Path) -> None:
    profile = tmp_path / "allow.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')

    result = cli.run("run", "--profile", str(profile), "--", str(tmp_path))

    assert result.returncode == 126, result.stderr
    assert f"seccomp-recorder run: error: command {tmp_path} is a directory" in result.stderr
    assert "chmod" not in result.stderr


def test_run_rejects_endless_profile(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    # The address-space limit turns a regression that reads without end into a quick
    # MemoryError instead of a machine out of memory.
    result = cli.run(
        "run", "--profile", "/dev/zero", "--", "touch", str(marker),
        prefix=("prlimit", f"--as={4 * 2**30}"),
    )  # fmt: skip

    assert result.returncode == 2, result.stderr
    assert "/dev/zero: the input is larger than 16 MiB, so it is not a profile" in result.stderr
    assert not marker.exists()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory that the unprivileged user nobody can write to, removed afterwards."""
    require(os.geteuid() == 0, "switching to the user nobody needs root")
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    with tempfile.TemporaryDirectory(prefix="seccomp-recorder-test-") as name:
        path = Path(name)
        path.chmod(0o777)
        yield path


@pytest.mark.kernel
@pytest.mark.parametrize("output_exists", [True, False], ids=["existing-output", "new-output"])
def test_record_without_privileges(output_exists: bool, cli: Cli, shared_dir: Path) -> None:
    output = shared_dir / "profile.yaml"
    if output_exists:
        output.write_bytes(EXISTING_BYTES)
        output.chmod(0o666)
    marker = shared_dir / "marker"

    result = cli.run("record", "-o", str(output), "--", "touch", str(marker), prefix=UNPRIVILEGED)

    assert result.returncode == 125, result.stderr
    assert "no permission to load BPF programs" in result.stderr
    assert "run as root, or grant CAP_BPF and CAP_PERFMON" in result.stderr
    assert not marker.exists()
    if output_exists:
        assert output.read_bytes() == EXISTING_BYTES
    else:
        assert not output.exists()
