"""Atomic file replacement: readers see the old file or the complete new one, never a part.

Used by the CLI for output files and by the node agent to install profiles, where a
container runtime may read the file at any moment. The data goes to a temporary file in
the same directory (so the rename stays within one filesystem), is flushed to disk, and
is renamed over the target. The directory is then flushed too, so the rename survives a
crash. If anything fails before the rename, the temporary file is removed and the target
is left as it was.

`write_atomic` replaces the path itself and sets a fixed mode, as the agent needs.
`save_file` saves as editors and `cp` do, for the CLI: through symbolic links, keeping
the mode and owner of the file it replaces.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

DEFAULT_MODE = 0o644  # Profiles are read by the container runtime, which may not run as root.
# Symbolic links followed at most before ELOOP, as the kernel's MAXSYMLINKS (linux/namei.h).
MAX_SYMLINKS = 40


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | str,
    *,
    mode: int = DEFAULT_MODE,
    owner: tuple[int, int] | None = None,
) -> None:
    """Replace the file at `path` with `data` (str is encoded as UTF-8), with permissions `mode`.

    The file gets exactly `mode`, whatever the umask, and the user and group ids of `owner`
    when given and permitted. A symbolic link at `path` is replaced, not followed. Raises
    OSError when the directory is missing or not writable, or when writing, flushing or
    renaming fails. If the final flush of the directory fails, the new file is already in
    place, but a crash may still undo the rename.
    """
    target = Path(path)
    content = data.encode() if isinstance(data, str) else data
    descriptor, temporary_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as temporary:
            temporary.write(content)
            temporary.flush()
            if owner is not None:
                # Only root may give a file away, and a user may pick only their own groups,
                # so the new file keeps the writer's ids where the change is not permitted.
                with contextlib.suppress(PermissionError):
                    os.fchown(temporary.fileno(), *owner)
            # fchmod comes after fchown, because fchown clears the set-user-ID and set-group-ID
            # bits.
            os.fchmod(temporary.fileno(), mode)
            os.fsync(temporary.fileno())
        os.replace(temporary_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary_name)
        raise
    fsync_directory(target.parent)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush `directory` to disk, so that a rename or removal in it survives a crash."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save_file(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write `data` to the file that `path` names, as editors and `cp` save a file.

    A symbolic link is followed, and its target is replaced atomically in the target's
    directory, so the link stays. An existing file keeps its mode, and its owner where
    permitted. A new file gets DEFAULT_MODE. A device or FIFO, such as /dev/null, is
    written in place, because replacing it would remove the device. So is a file that the
    links of /proc (/dev/stdout) lead to, whose link text is no path. Raises OSError as
    `write_atomic` does, IsADirectoryError for a directory, and ELOOP for a cycle of links.
    """
    content = data.encode() if isinstance(data, str) else data
    try:
        status = os.stat(path)
    except FileNotFoundError:
        write_atomic(resolve_symlinks(path), content)
        return
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    target = resolve_symlinks(path)
    if stat.S_ISREG(status.st_mode) and _same_file(target, status):
        owner = (status.st_uid, status.st_gid)
        write_atomic(target, content, mode=stat.S_IMODE(status.st_mode), owner=owner)
        return
    with open(path, "wb") as file:
        file.write(content)


def _same_file(path: Path, status: os.stat_result) -> bool:
    try:
        found = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (status.st_dev, status.st_ino)


def resolve_symlinks(path: str | os.PathLike[str]) -> Path:
    """Return `path` with the symbolic links of its last component followed.

    A relative link target is taken relative to the link's directory. A link whose target
    does not exist resolves to that target, which writing then creates. The directories
    on the way are left as they are, because a file is created through them alike. Raises
    OSError with ELOOP after MAX_SYMLINKS links.
    """
    current = Path(path)
    for _ in range(MAX_SYMLINKS):
        try:
            link = os.readlink(current)
        except OSError as error:
            if error.errno in (errno.EINVAL, errno.ENOENT):
                return current  # Not a symbolic link, or nothing there yet.
            raise
        current = current.parent / link
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
