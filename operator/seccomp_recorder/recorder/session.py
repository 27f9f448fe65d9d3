"""Run a command as a recorded process tree and wait until all of it has exited."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from seccomp_recorder.recorder.errors import RecorderError
from seccomp_recorder.recorder.recorder import NamespaceRecording, Recorder, mount_namespace_of

logger = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# The status a shell gives a command it cannot find or execute.
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126


class CommandNotFound(RecorderError):
    """The command to record does not exist or is not executable."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


@dataclass
class CommandOutcome:
    exit_status: int
    launcher_mntns: int
    recordings: dict[int, NamespaceRecording]


def resolve_command(command: str, path: str | None = None) -> str:
    """Return the file that execve would run for `command`, or raise CommandNotFound."""
    if "/" in command:
        if not os.path.exists(command):
            raise CommandNotFound(
                f"command not found: {command}: no such file: check the path", EXIT_NOT_FOUND
            )
        if os.path.isdir(command) or not os.access(command, os.X_OK):
            raise CommandNotFound(
                f"command {command} is not executable: check its mode (chmod +x)",
                EXIT_NOT_EXECUTABLE,
            )
        return command
    found = shutil.which(command, path=path)
    if found is None:
        raise CommandNotFound(
            f"command not found: {command}: it is in no directory of PATH; "
            "give its full path",
            EXIT_NOT_FOUND,
        )
    return found


def _set_child_subreaper(enabled: bool) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(number)}")


@contextmanager
def _forwarding_signals(pid: int) -> Iterator[None]:
    """Pass the signals that would stop the recorder on to the command instead."""

    def forward(number: int, _frame: FrameType | None) -> None:
        logger.info("passing signal %s on to the command (pid %d)", signal.Signals(number).name, pid)
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass

    previous = {number: signal.signal(number, forward) for number in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def record_command(
    argv: Sequence[str],
    recorder: Recorder,
    *,
    environment: Mapping[str, str] | None = None,
) -> CommandOutcome:
    """Run `argv` with every task it creates recorded, until the last of them exits.

    The recorder becomes a child subreaper, so descendants that double-fork away
    from the command are reparented to it and waited for too. The command's own
    exit status is returned in shell form: 128 + N when signal N ended it.
    """
    executable = resolve_command(argv[0], (environment or os.environ).get("PATH"))
    launcher_mntns = mount_namespace_of()
    _set_child_subreaper(True)
    try:
        # NB: os.pipe() gives close-on-exec descriptors, so the child makes no
        # close() calls of its own between its release and its execve.
        release_read, release_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child replaces itself below
            try:
                os.read(release_read, 1)
                if environment is None:
                    os.execv(executable, list(argv))
                else:
                    os.execve(executable, list(argv), dict(environment))
            except OSError as error:
                os.write(2, f"seccomp-recorder: cannot execute {executable}: {error}\n".encode())
            os._exit(EXIT_NOT_EXECUTABLE)

        os.close(release_read)
        try:
            recorder.track(pid)
        finally:
            os.write(release_write, b"x")
            os.close(release_write)
        logger.info("recording %s (pid %d) and all its descendants", executable, pid)

        status = _wait_for_all(pid)
    finally:
        _set_child_subreaper(False)

    recordings = recorder.snapshot()
    return CommandOutcome(
        exit_status=_shell_status(status),
        launcher_mntns=launcher_mntns,
        recordings=recordings,
    )


def _wait_for_all(pid: int) -> int:
    """Reap every child until none is left; return the wait status of `pid`."""
    command_status = 0
    with _forwarding_signals(pid):
        while True:
            try:
                reaped, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if reaped == pid:
                command_status = status
                logger.info("command (pid %d) ended with %s", pid, _shell_status(status))
            else:
                logger.debug("reaped descendant %d", reaped)
    return command_status


def _shell_status(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
