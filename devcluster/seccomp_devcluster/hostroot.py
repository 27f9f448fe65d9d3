"""The `host` root filesystem: a read-only view of the host's root for running host programs.

Used by `seccomp_devcluster.oci` for containers with `rootfs="host"`. The host's "/"
cannot itself be the container's root because pivot_root rejects the caller's own
root mount, so the bundle's root folder is a skeleton: the host's top-level symlinks
are copied, and each top-level directory is bind-mounted read-only. /proc, /sys and
/dev are the container's own, and /tmp and /run are private, writable tmpfs mounts.

Two refinements of that picture:

- Mount points. A volume whose mount point is missing on the host (for example
  /var/lib/kubelet/seccomp) needs the runtime to create it, which a read-only bind
  of /var forbids and which must never touch the host. So every directory on the way
  to a missing mount point becomes a skeleton directory too, whose entries are bound
  one by one, and the runtime creates the missing part inside the bundle.
- /root. Root's home is hidden but for the Python installation that this process
  runs on (`sys.base_prefix`, when it lies under /root, as with pyenv), so a
  container of any user can run the dev cluster's venv and never reads root's files.
  The skeleton directories on the way to it are world-searchable (mode 0755).
- /tmp. The venv and the project's sources are bound read-only over the private /tmp
  when they lie under it, as in a checkout that CI cloned to /tmp, so the project's
  images still run there.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# Top-level host directories that a host-root container gets fresh instead of bound.
HOST_ROOT_SKIPPED = frozenset({"proc", "sys", "dev", "tmp", "run", "lost+found"})
HIDDEN_HOME = PurePosixPath("/root")
TMP = PurePosixPath("/tmp")
BIND_OPTIONS = ["rbind", "ro", "nosuid", "nodev"]


def exposed_tmp_paths() -> list[PurePosixPath]:
    """Return the paths under /tmp that the host image shows: the venv and the project's sources."""
    candidates = {os.path.realpath(sys.prefix)}
    for package in ("seccomp_recorder", "seccomp_devcluster"):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            candidates.add(os.path.dirname(os.path.realpath(location)))
    paths: list[PurePosixPath] = []
    for candidate in sorted(candidates):  # parents sort before their children
        path = PurePosixPath(candidate)
        if path == TMP or not path.is_relative_to(TMP):
            continue
        if not any(path.is_relative_to(shown) for shown in paths):
            paths.append(path)
    return paths


def exposed_home_paths() -> list[PurePosixPath]:
    """Return the paths under /root that the host image shows: the venv's Python prefix."""
    prefix = PurePosixPath(os.path.realpath(sys.base_prefix))
    if prefix.is_relative_to(HIDDEN_HOME) and prefix != HIDDEN_HOME:
        return [prefix]
    return []


@dataclass
class HostRootLayout:
    """Plan of a host-root bundle: skeleton folders, copied symlinks and read-only binds."""

    directories: list[PurePosixPath] = field(default_factory=list)
    symlinks: dict[PurePosixPath, str] = field(default_factory=dict)
    binds: list[PurePosixPath] = field(default_factory=list)
    # Binds over the private /tmp, mounted after it.
    tmp_binds: list[PurePosixPath] = field(default_factory=list)

    def mounts(self) -> list[dict[str, Any]]:
        """Return the OCI mounts: the binds, then private /tmp and /run."""
        mounts: list[dict[str, Any]] = [_read_only_bind(path) for path in self.binds]
        mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "mode=1777"]})
        mounts.append({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "mode=755"]})
        return mounts

    def tmp_mounts(self) -> list[dict[str, Any]]:
        """Return the binds into /tmp, to mount after every other mount, volumes at /tmp too."""
        return [_read_only_bind(path) for path in self.tmp_binds]

    def build(self, rootfs: Path) -> None:
        """Create the skeleton folders and symlinks inside `rootfs` (the bundle's root)."""
        rootfs.mkdir(parents=True, exist_ok=True)
        for directory in self.directories:
            target = rootfs / directory.relative_to("/")
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o755)
        for link, destination in self.symlinks.items():
            (rootfs / link.relative_to("/")).symlink_to(destination)


def _read_only_bind(path: PurePosixPath) -> dict[str, Any]:
    return {"destination": str(path), "type": "bind", "source": str(path),
            "options": list(BIND_OPTIONS)}


def _first_missing(destination: PurePosixPath) -> PurePosixPath | None:
    """Return the first component of `destination` missing on the host, if it must be made.

    None when the path exists, when it passes through a symlink (the runtime follows
    it inside the container), or when it lies in a folder the container gets fresh.
    """
    if len(destination.parts) < 2 or destination.parts[1] in HOST_ROOT_SKIPPED:
        return None
    current = PurePosixPath("/")
    for part in destination.parts[1:]:
        current = current / part
        if os.path.islink(current):
            return None
        if not os.path.lexists(current):
            return current
    return None


def host_root_layout(mount_destinations: list[str]) -> HostRootLayout:
    """Plan the host root for a container whose extra mounts go to `mount_destinations`."""
    # Folders whose entries are bound one by one instead of the folder as a whole.
    split: set[PurePosixPath] = set()
    # Folders that show only some of their entries: /root shows the exposed paths alone.
    only: dict[PurePosixPath, set[str]] = {HIDDEN_HOME: set()}
    for destination in mount_destinations:
        missing = _first_missing(PurePosixPath(os.path.normpath(destination)))
        if missing is not None:
            split.update(parent for parent in missing.parents if parent != PurePosixPath("/"))
    split.add(HIDDEN_HOME)
    for exposed in exposed_home_paths():
        chain = [exposed, *exposed.parents]
        for child, parent in itertools.pairwise(chain):
            if parent == PurePosixPath("/"):
                break
            split.add(parent)
            only.setdefault(parent, set()).add(child.name)

    layout = HostRootLayout(tmp_binds=exposed_tmp_paths())
    _plan_directory(PurePosixPath("/"), split, only, layout)
    return layout


def _plan_directory(directory: PurePosixPath, split: set[PurePosixPath],
                    only: dict[PurePosixPath, set[str]], layout: HostRootLayout) -> None:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return
    for name in names:
        if directory in only and name not in only[directory]:
            continue
        path = directory / name
        if directory == PurePosixPath("/") and name in HOST_ROOT_SKIPPED:
            continue
        if os.path.islink(path):
            layout.symlinks[path] = os.readlink(path)
        elif path in split and os.path.isdir(path):
            layout.directories.append(path)
            _plan_directory(path, split, only, layout)
        elif os.path.isdir(path) or os.path.isfile(path):
            layout.binds.append(path)
        # Sockets, devices and FIFOs outside /dev are left out.
