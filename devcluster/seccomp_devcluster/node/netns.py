"""Pod network namespaces: one per pod, kept alive by a bind mount on a file.

`unshare --net=FILE` (util-linux) creates the namespace and bind-mounts it onto
FILE, so it lives until FILE is unmounted and needs no process. The node keeps
these files in its own state directory, never in /run/netns, so no system-wide
mount is created. A test enters a pod's namespace with `nsenter --net=FILE`.

The node itself works inside a namespace with `call_in_network_namespace`. A socket
stays in the namespace where it was created, so a thread that entered the namespace
can create listening or connected sockets there for the rest of the process to use.
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
Result = TypeVar("Result")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int


def create_network_namespace(path: Path) -> None:
    """Create a network namespace bound at `path`, with its loopback interface up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    try:
        subprocess.run(["unshare", f"--net={path}", "ip", "link", "set", "lo", "up"],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        delete_network_namespace(path)
        raise OSError(f"creating the network namespace at {path} failed: "
                      f"{error.stderr.strip()}") from error


def delete_network_namespace(path: Path) -> None:
    """Unmount and remove a namespace file; a missing or unmounted file is ignored."""
    if not path.exists():
        return
    if is_mount_point(path):
        subprocess.run(["umount", str(path)], check=True, capture_output=True)
    path.unlink(missing_ok=True)


def is_mount_point(path: Path) -> bool:
    target = str(path.resolve())
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == target:
            return True
    return False


def call_in_network_namespace(path: Path, function: Callable[[], Result]) -> Result:
    """Call `function` in a new thread that entered the network namespace bound at `path`.

    Returns what `function` returns, or raises what it raised. Only that short-lived
    thread changes namespace, so the caller and every other thread stay where they
    were. Sockets that `function` creates keep belonging to the pod's namespace.
    """
    outcome: dict[str, Result] = {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(descriptor, CLONE_NEWNET) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"setns into network namespace {path} failed: "
                                         f"{os.strerror(error)}")
            finally:
                os.close(descriptor)
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            failure.append(error)

    thread = threading.Thread(target=run, name=f"netns-{path.name[:12]}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome["value"]
