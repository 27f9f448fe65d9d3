"""Helpers for the kernel tests: started processes, the CLI, ports, strace and profiles.

This module has a name of its own, unlike conftest.py, so test modules import it
reliably: pytest loads every conftest.py of a folder without `__init__.py` as the
module `conftest`, and a later one replaces an earlier one in `sys.modules`.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKLOADS_DIR = Path(__file__).resolve().parent / "workloads"
# The CLI as the tests start it: the same interpreter, so the same installed package.
CLI = (sys.executable, "-m", "seccomp_recorder.cli.main")
# Seconds a started command may take before the test kills it and fails: a guard
# against hangs, far above what any command here needs, never a measurement.
COMMAND_TIMEOUT = 60.0


def cli_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return this environment without SECCOMP_RECORDER_* settings, plus `overrides`."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("SECCOMP_RECORDER_")
    }
    environment.update(overrides or {})
    return environment


def _leader_unreaped(pid: int) -> bool:
    """Tell whether child `pid` is running or a zombie, without reaping it."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


class Processes:
    """Processes one test started, all killed by process group or pidfd when it ends.

    Every command starts in a session of its own, so its process group id is its
    pid. The group is killed only while its leader is not yet reaped, because the
    kernel may give the number to another process once the leader is gone.
    Processes that leave the group (a daemon calling setsid) are handed to
    `adopt`, which pins them with a pidfd.
    """

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[str]] = []
        self._pidfds: list[int] = []

    def start(self, argv: Sequence[str], **popen_arguments: Any) -> subprocess.Popen[str]:
        process = subprocess.Popen(list(argv), start_new_session=True, text=True, **popen_arguments)
        self._started.append(process)
        return process

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = COMMAND_TIMEOUT,
        **popen_arguments: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` to its end and capture its output. Fail the test when it times out."""
        process = self.start(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **popen_arguments,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(process)
            stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
            pytest.fail(
                f"{shlex.join(argv)} did not end within {timeout} s and was killed\n"
                f"stdout:\n{stdout}\nstderr:\n{stderr}"
            )
        return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)

    def adopt(self, pid: int) -> None:
        """Kill process `pid` too when the test ends. A pidfd keeps its number from reuse."""
        try:
            self._pidfds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            pass

    def kill(self, process: subprocess.Popen[str]) -> None:
        """Send SIGKILL to the process group of `process` unless its leader was reaped."""
        if not _leader_unreaped(process.pid):
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for pidfd in self._pidfds:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(pidfd)
        self._pidfds.clear()
        for process in self._started:
            self.kill(process)
            process.wait(timeout=COMMAND_TIMEOUT)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        self._started.clear()


class Cli:
    """The seccomp-recorder command line, started as a separate process."""

    def __init__(self, processes: Processes) -> None:
        self.processes = processes

    def run(
        self,
        *arguments: str,
        environment: Mapping[str, str] | None = None,
        prefix: Sequence[str] = (),
        timeout: float = COMMAND_TIMEOUT,
        **popen_arguments: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run `seccomp-recorder ARGUMENTS`, after `prefix` (such as setpriv) if given."""
        return self.processes.run(
            [*prefix, *CLI, *arguments],
            env=cli_environment(environment),
            timeout=timeout,
            **popen_arguments,
        )

    def start(self, *arguments: str, **popen_arguments: Any) -> subprocess.Popen[str]:
        """Start `seccomp-recorder ARGUMENTS` in the background."""
        return self.processes.start([*CLI, *arguments], env=cli_environment(), **popen_arguments)


# One line of `strace -f -o FILE`: the pid, then a call, a resumed call, a signal
# (`--- SIGCHLD ... ---`) or an exit (`+++ exited with 0 +++`).
def load_profile(path: Path) -> dict[str, Any]:
    """Return the OCI seccomp document of a profile file in either form.

    Read with PyYAML (JSON is YAML) rather than the package's own parser, so
    the tests check the written text independently of the code under test.
    """
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    if "kind" in document:
        spec: dict[str, Any] = document["spec"]
        return spec
    return document


def allowed_names(spec: Mapping[str, Any]) -> set[str]:
    """Return the names that SCMP_ACT_ALLOW rules without argument conditions allow."""
    return {
        name
        for rule in spec.get("syscalls", [])
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }


def rules_for(spec: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """Return every rule of `spec` that names syscall `name`."""
    return [rule for rule in spec.get("syscalls", []) if name in rule["names"]]
