"""Run a command as a recorded process tree and wait until all of it has exited."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import logging
import os
import shutil
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

from seccomp_recorder.recorder.errors import RecorderError
from seccomp_recorder.recorder.recorder import NamespaceRecording, Recorder, mount_namespace_of

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# The status a shell gives a command it cannot find or execute.
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
# The shell that runs an executable file without a #! line, as execvp and shells do.
SCRIPT_SHELL = "/bin/sh"


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


def exec_command(
    executable: str, argv: Sequence[str], environment: Mapping[str, str] | None = None
) -> NoReturn:
    """Replace this process with `executable`, running `argv`.

    A file that the kernel cannot execute (ENOEXEC: no #! line, not a binary) runs
    through /bin/sh, as POSIX execvp and shells run it. Raises OSError when it fails.
    """
    try:
        _execute(executable, argv, environment)
    except OSError as error:
        if error.errno != errno.ENOEXEC:
            raise
    _execute(SCRIPT_SHELL, [SCRIPT_SHELL, executable, *argv[1:]], environment)


def _execute(
    executable: str, argv: Sequence[str], environment: Mapping[str, str] | None
) -> NoReturn:
    if environment is None:
        os.execv(executable, list(argv))
    os.execve(executable, list(argv), dict(environment))


@functools.cache
def _libc() -> ctypes.CDLL:
    """Load the C library once. NB: find_library runs ldconfig, so never call it first in
    the recorded child: those calls would land in the profile."""
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _set_parent_death_signal(number: int) -> None:
    libc = _libc()
    if libc.prctl(PR_SET_PDEATHSIG, number, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")


def _set_child_subreaper(enabled: bool) -> None:
    libc = _libc()
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(number)}")


def _children() -> list[int]:
    """Return the PIDs of this process's children that it has not reaped yet.

    Until they are reaped their PIDs cannot be reused, so signalling them never reaches
    an unrelated process.
    """
    own = os.getpid()
    if not os.path.exists(f"/proc/{own}/task/{own}/children"):
        return _children_from_stat(own)
    children: list[int] = []
    for task in os.listdir(f"/proc/{own}/task"):
        try:
            with open(f"/proc/{own}/task/{task}/children", encoding="ascii") as listing:
                children.extend(int(pid) for pid in listing.read().split())
        except FileNotFoundError:
            continue  # The thread ended, and its children moved to another thread.
    return children


def _children_from_stat(own: int) -> list[int]:
    """Find the children of `own` by their parent PID, on kernels without CONFIG_PROC_CHILDREN."""
    children = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == own:
            children.append(int(entry.name))
    return children


class _SignalForwarder:
    """Pass the signals that would stop the recorder on to the processes it waits for.

    A signal goes to every child of the recorder: the command, and the descendants that
    were reparented to the recorder (a child subreaper) when their parent exited. A
    descendant orphaned later, once the signal ended its parent, gets the last signal
    when the recorder reaps that parent. So `kill PID` of the recorder stops a shell's
    background jobs as well as the shell, and the recorder does not wait for them.
    """

    def __init__(self, command: int) -> None:
        self.command = command
        self.last: int | None = None
        self._signalled: set[int] = set()

    def forward(self, number: int, _frame: FrameType | None) -> None:
        self.last = number
        children = _children()
        targets = ", ".join(
            f"the command (pid {pid})" if pid == self.command else f"pid {pid}"
            for pid in children
        )
        logger.info("passing signal %s on to %s", signal.Signals(number).name, targets or "nobody")
        for pid in children:
            self._send(pid, number)

    def reaped(self, pid: int) -> None:
        """Forget `pid`, and pass the last signal on to descendants orphaned since."""
        self._signalled.discard(pid)
        if self.last is None:
            return
        for child in _children():
            if child not in self._signalled:
                logger.info(
                    "passing signal %s on to pid %d, orphaned when pid %d ended",
                    signal.Signals(self.last).name, child, pid,
                )
                self._send(child, self.last)

    def _send(self, pid: int, number: int) -> None:
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            pass
        self._signalled.add(pid)


def _reset_forwarded_signals() -> None:
    """Give the forwarded signals their default action in a forked child, unless ignored.

    execve would do the same for handled signals, but the child runs Python code until
    then. A signal that the recorder's own parent set to be ignored stays ignored.
    """
    for number in FORWARDED_SIGNALS:
        ignored = signal.getsignal(number) == signal.SIG_IGN
        signal.signal(number, signal.SIG_IGN if ignored else signal.SIG_DFL)


@contextmanager
def _forwarding_signals(forwarder: _SignalForwarder) -> Iterator[None]:
    """Install `forwarder` for the signals that would otherwise stop the recorder."""
    previous = {number: signal.signal(number, forwarder.forward) for number in FORWARDED_SIGNALS}
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
    exit status is returned in shell form: 128 + N when signal N ended it. Raises
    CommandNotFound when the command cannot be found or executed.
    """
    executable = resolve_command(argv[0], (environment or os.environ).get("PATH"))
    launcher_mntns = mount_namespace_of()
    _set_child_subreaper(True)
    try:
        # NB: os.pipe() gives close-on-exec descriptors, so the child makes no
        # close() calls of its own between its release and its execve. A successful
        # execve closes the child's end of `failure` unwritten, so once every process
        # has exited the parent reads there why the command could not run, or nothing.
        release_read, release_write = os.pipe()
        failure_read, failure_write = os.pipe()
        parent = os.getpid()
        # The signals to forward stay blocked until the forwarder is installed: one that
        # arrived before would end the recorder, or run the recorder's handlers in the
        # child before its execve.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:  # pragma: no cover - the child replaces itself below
            try:
                _reset_forwarded_signals()
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                # The command dies with the recorder, so a recorder killed with SIGKILL
                # leaves no unrecorded command running. NOTE: its own children are not
                # covered, and carry on under init.
                _set_parent_death_signal(signal.SIGKILL)
                if os.getppid() != parent:
                    os._exit(EXIT_NOT_EXECUTABLE)
                os.read(release_read, 1)
                exec_command(executable, argv, environment)
            except OSError as error:
                os.write(failure_write, (error.strerror or str(error)).encode())
            os._exit(EXIT_NOT_EXECUTABLE)

        forwarder = _SignalForwarder(pid)
        with _forwarding_signals(forwarder):
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(release_read)
            os.close(failure_write)
            try:
                recorder.track(pid)
            finally:
                os.write(release_write, b"x")
                os.close(release_write)
            logger.info("recording %s (pid %d) and all its descendants", executable, pid)

            status = _wait_for_all(pid, forwarder)
        try:
            reason = _read_all(failure_read).decode(errors="replace")
        finally:
            os.close(failure_read)
    finally:
        _set_child_subreaper(False)

    if reason:
        raise CommandNotFound(
            f"cannot execute {executable}: {reason}: check its mode, its #! line and that"
            " its interpreter exists",
            EXIT_NOT_EXECUTABLE,
        )
    recordings = recorder.snapshot()
    return CommandOutcome(
        exit_status=_shell_status(status),
        launcher_mntns=launcher_mntns,
        recordings=recordings,
    )


def _read_all(descriptor: int) -> bytes:
    chunks = []
    while chunk := os.read(descriptor, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def _wait_for_all(pid: int, forwarder: _SignalForwarder) -> int:
    """Reap every child until none is left; return the wait status of `pid`."""
    command_status = 0
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
        forwarder.reaped(reaped)
    return command_status


def _shell_status(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
