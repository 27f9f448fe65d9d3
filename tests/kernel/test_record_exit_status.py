"""`record` exits with its command's status and waits for daemons the command leaves behind."""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kernel_helpers import COMMAND_TIMEOUT, Cli, Processes, allowed_names, load_profile

pytestmark = pytest.mark.kernel

# The shell's status for a command that signal N ended: 128 + N.
SIGTERM_STATUS = 128 + signal.SIGTERM


@pytest.mark.parametrize(
    ("script", "status"),
    [("exit 0", 0), ("exit 7", 7), ("kill -TERM $$", SIGTERM_STATUS)],
    ids=["exit-0", "exit-7", "sigterm"],
)
def test_record_exits_with_command_status(
    script: str, status: int, recording_host: None, cli: Cli, tmp_path: Path
) -> None:
    profile_path = tmp_path / "sh.yaml"

    result = cli.run("record", "-o", str(profile_path), "--", "/bin/sh", "-c", script)

    assert result.returncode == status, result.stderr
    # The profile covers what ran before the command ended, so it is written anyway.
    assert "execve" in allowed_names(load_profile(profile_path))
    if status != 0:
        assert f"the command exited with status {status}" in result.stderr


def test_sigterm_to_record_reaches_command(recording_host: None, cli: Cli, tmp_path: Path) -> None:
    profile_path = tmp_path / "sleep.yaml"
    recorder = cli.start(
        "record", "-o", str(profile_path), "--",
        "/bin/sh", "-c", "echo started; exec sleep 60",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert recorder.stdout is not None
    readable, _, _ = select.select([recorder.stdout], [], [], COMMAND_TIMEOUT)
    assert readable, "the command did not start"
    assert recorder.stdout.readline() == "started\n"

    os.kill(recorder.pid, signal.SIGTERM)
    _, stderr = recorder.communicate(timeout=COMMAND_TIMEOUT)

    # A recorder ended by the signal itself would give -15 and write no profile.
    assert recorder.returncode == SIGTERM_STATUS, stderr
    assert "execve" in allowed_names(load_profile(profile_path))


def test_sigterm_to_record_ends_orphaned_jobs(
    recording_host: None, cli: Cli, processes: Processes, tmp_path: Path
) -> None:
    """The shell dies of the signal; its background job, reparented to record, gets it too."""
    profile_path = tmp_path / "jobs.yaml"
    pid_file = tmp_path / "job.pid"
    recorder = cli.start(
        "record", "-o", str(profile_path), "--",
        "/bin/sh", "-c", f"sleep 600 & echo $! > {pid_file}; wait",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while not pid_file.exists() or not pid_file.read_text().endswith("\n"):
        assert time.monotonic() < deadline, "the command never started its job"
        assert recorder.poll() is None, "record exited before the job started"
        time.sleep(0.01)
    job = int(pid_file.read_text())
    processes.adopt(job)

    os.kill(recorder.pid, signal.SIGTERM)
    _, stderr = recorder.communicate(timeout=COMMAND_TIMEOUT)

    assert recorder.returncode == SIGTERM_STATUS, stderr
    # record reaped the job, so it no longer exists.
    with pytest.raises(ProcessLookupError):
        os.kill(job, 0)
    assert "execve" in allowed_names(load_profile(profile_path))


def wait_for_daemon(recorder: subprocess.Popen[str], pid_file: Path) -> tuple[int, int]:
    """Return the daemon's pid and parent pid from `pid_file` once it is written."""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while time.monotonic() < deadline:
        text = pid_file.read_text() if pid_file.exists() else ""
        if text.endswith("\n"):
            daemon_pid, parent_pid = (int(field) for field in text.split())
            return daemon_pid, parent_pid
        if recorder.poll() is not None:
            pytest.fail(f"record exited with {recorder.returncode} before the daemon started")
        time.sleep(0.01)
    pytest.fail(f"the daemon wrote no {pid_file} within {COMMAND_TIMEOUT} s")


def release(fifo: Path) -> None:
    """Open `fifo` for writing once its reader is there, which lets the daemon go on."""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return
        except OSError as error:
            if error.errno != errno.ENXIO:  # ENXIO: no reader has opened it yet.
                raise
        time.sleep(0.01)
    pytest.fail(f"the daemon did not open {fifo} within {COMMAND_TIMEOUT} s")


def test_record_waits_for_daemon(
    recording_host: None,
    cli: Cli,
    processes: Processes,
    compile_workload: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    profile_path = tmp_path / "daemon.json"
    pid_file = tmp_path / "daemon.pid"
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    recorder = cli.start(
        "record", "--format", "oci", "-o", str(profile_path), "--",
        str(compile_workload("daemon")), str(pid_file), str(fifo),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip

    daemon_pid, parent_pid = wait_for_daemon(recorder, pid_file)
    processes.adopt(daemon_pid)

    # The command and its middle child are gone: the daemon was reparented to the
    # recorder (a child subreaper), which keeps recording until the daemon exits too.
    assert parent_pid == recorder.pid
    assert recorder.poll() is None
    assert not profile_path.exists()

    release(fifo)
    _, stderr = recorder.communicate(timeout=COMMAND_TIMEOUT)

    assert recorder.returncode == 0, stderr
    names = allowed_names(load_profile(profile_path))
    assert "setsid" in names
    # Made by the daemon after the command it came from had exited.
    assert "sched_getparam" in names


def test_killed_recorder_takes_command_along(
    recording_host: None, cli: Cli, processes: Processes, tmp_path: Path
) -> None:
    pid_file = tmp_path / "command.pid"
    recorder = cli.start(
        "record", "-o", str(tmp_path / "never.yaml"), "--",
        "/bin/sh", "-c", f"echo $$ > {pid_file}; exec sleep 600",
    )
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    command = int(pid_file.read_text())
    pidfd = os.pidfd_open(command)
    processes.adopt(command)

    recorder.send_signal(signal.SIGKILL)
    recorder.wait(timeout=COMMAND_TIMEOUT)

    # The command gets SIGKILL as its parent dies; the pidfd turns readable once it exited.
    readable, _, _ = select.select([pidfd], [], [], COMMAND_TIMEOUT)
    os.close(pidfd)
    assert readable, "the command outlived the recorder that was killed"
    assert not (tmp_path / "never.yaml").exists()
