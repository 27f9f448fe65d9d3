"""Cgroup housekeeping for OCI containers: removing their cgroups, and crun on hybrid mode.

Used by `seccomp_devcluster.oci`, which re-exports `crun_ready`.
"""

from __future__ import annotations

import errno
import logging
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


def _cgroup_mounts() -> list[tuple[Path, str]]:
    """Return (mount point, this process's cgroup in it) for every cgroup hierarchy."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    result = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], fields[separator + 3]
        mount_point = Path(fields[4])
        if fstype == "cgroup2":
            result.append((mount_point, own.get("", "/")))
        elif fstype == "cgroup":
            mount_options = set(options.split(","))
            own_path = next((path for controllers, path in own.items()
                             if controllers and set(controllers.split(",")) <= mount_options),
                            "/")
            result.append((mount_point, own_path))
    return result


def remove_cgroup(path: str, levels: int | None = None) -> None:
    """Remove the cgroup `path` and its empty parents in every hierarchy.

    `levels` limits how many trailing path components may be removed (None: all).
    runc places a relative cgroup path under its own cgroup in each hierarchy and
    crun under the hierarchy's root, so both places are tried. Busy or non-empty
    cgroups (a pod cgroup with other containers) are left alone.
    """
    parts = [p for p in path.strip("/").split("/") if p]
    lowest = 0 if levels is None else max(len(parts) - levels, 0)
    for mount_point, own in _cgroup_mounts():
        for base in {mount_point, mount_point / own.lstrip("/")}:
            for depth in range(len(parts), lowest, -1):
                try:
                    (base / "/".join(parts[:depth])).rmdir()
                except FileNotFoundError:
                    continue
                except OSError as error:
                    if error.errno in (errno.EBUSY, errno.ENOTEMPTY):
                        break
                    raise


_hugetlb_lock = threading.Lock()
_hugetlb_users = 0
_hugetlb_mount: Path | None = None


def _hybrid_with_hugetlb() -> bool:
    """Tell whether cgroups run in hybrid mode on a kernel that has the hugetlb controller."""
    if not Path("/sys/fs/cgroup/unified/cgroup.controllers").exists():
        return False
    for line in Path("/proc/cgroups").read_text().splitlines()[1:]:
        name, _, _, enabled = line.split()
        if name == "hugetlb" and enabled == "1":
            return True
    return False


@contextmanager
def crun_ready(directory: Path | None = None) -> Iterator[None]:
    """Make crun usable on a hybrid-cgroup machine for the duration of the block.

    crun 1.8 rejects hybrid mode while any controller is enabled on cgroup2. On
    hybrid machines that is `hugetlb` (the only controller no v1 hierarchy takes), so
    a v1 hugetlb hierarchy is mounted in `directory` (or a temporary directory) and
    unmounted when the last user in this process leaves. Each process mounts its own
    even when another process already did, so no other process's unmount can take
    the v1 binding away while this block runs. Nesting and threads are safe.
    """
    global _hugetlb_users, _hugetlb_mount
    with _hugetlb_lock:
        if _hugetlb_users == 0 and _hybrid_with_hugetlb():
            if directory is None:
                target = Path(tempfile.mkdtemp(prefix="seccomp-devcluster-hugetlb-"))
            else:
                target = directory
                target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", str(target)],
                           check=True, capture_output=True)
            logger.debug("Mounted a v1 hugetlb hierarchy at %s for crun", target)
            _hugetlb_mount = target
        _hugetlb_users += 1
    try:
        yield
    finally:
        with _hugetlb_lock:
            _hugetlb_users -= 1
            if _hugetlb_users == 0 and _hugetlb_mount is not None:
                subprocess.run(["umount", str(_hugetlb_mount)], check=True, capture_output=True)
                _hugetlb_mount.rmdir()
                logger.debug("Unmounted the hugetlb hierarchy at %s", _hugetlb_mount)
                _hugetlb_mount = None


def remove_cgroup_tree(path: str) -> list[str]:
    """Remove the cgroup `path` with every cgroup below it, in every hierarchy.

    For clean-up after the processes are gone: a cgroup that still has processes
    stays, and is returned with the others that could not be removed.
    """
    parts = [p for p in path.strip("/").split("/") if p]
    remaining: list[str] = []
    for mount_point, own in _cgroup_mounts():
        for base in {mount_point, mount_point / own.lstrip("/")}:
            top = base.joinpath(*parts)
            if not top.is_dir():
                continue
            directories = sorted((p for p in top.rglob("*") if p.is_dir()),
                                 key=lambda p: len(p.parts), reverse=True)
            for directory in [*directories, top]:
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    remaining.append(str(directory))
    return remaining
