"""Keep one OCI container's exit status, as containerd's shim does.

`runc create` and `crun create` detach: the container's init process outlives the
runtime command, so no process is left to collect its exit status. This script makes
itself a child subreaper, so the init process is reparented to it, creates the
container, starts it on request and reports the exit status.

It runs as its own process, started by `seccomp_devcluster.oci.RunningContainer`
with `sys.executable`, and imports nothing from the package, so it works whatever
`sys.path` the caller had. Its stdin, stdout and stderr become the container's.

Protocol on the control socket (file descriptor given as the first argument), one
line per message:

    shim -> caller:  "created <pid>", "started", "failed", "exited <code>"
    caller -> shim:  "start"

`<code>` follows the runtimes' `run` command: the exit code, or 128 plus the signal
number when a signal ended the process. Closing the socket before "start" leaves
the container created; the caller then deletes it and the shim exits once the init
process is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def make_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    libc.prctl.restype = ctypes.c_int
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(errno)}")


def wait_for_exit(pid: int, control: socket.socket) -> None:
    """Reap the container's init process and report its exit code."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        code = 128 + os.WTERMSIG(status)
    else:
        code = os.waitstatus_to_exitcode(status)
    try:
        control.sendall(f"exited {code}\n".encode())
    except OSError:
        pass  # The caller went away; it reads the runtime state instead.


def main(argv: list[str]) -> int:
    control_fd, runtime, root, log, bundle, container_id, pid_file = argv
    control = socket.socket(fileno=int(control_fd))
    # Ctrl-C in the caller's terminal must not end the shim before its container:
    # the caller stops containers with `<runtime> kill` and then deletes them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    make_subreaper()

    base = [runtime, "--root", root, "--log", log]
    created = subprocess.run(
        [*base, "create", "--bundle", bundle, "--pid-file", pid_file, container_id],
        check=False,
    )
    if created.returncode != 0:
        control.sendall(b"failed\n")
        return 1

    pid = int(Path(pid_file).read_text().strip())
    waiter = threading.Thread(target=wait_for_exit, args=(pid, control), daemon=True)
    waiter.start()
    control.sendall(f"created {pid}\n".encode())

    request = control.makefile("r").readline().strip()
    if request == "start":
        started = subprocess.run([*base, "start", container_id], check=False)
        try:
            control.sendall(b"started\n" if started.returncode == 0 else b"failed\n")
        except OSError:
            pass

    waiter.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
