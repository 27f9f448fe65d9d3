"""Pod network namespaces: one per pod, kept alive by a bind mount on a file.

`unshare --net=FILE` (util-linux) creates the namespace and bind-mounts it onto
FILE, so it lives until FILE is unmounted and needs no process. The node keeps
these files in its own state directory, never in /run/netns, so no system-wide
mount is created. A test enters a pod's namespace with `nsenter --net=FILE`.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)


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
