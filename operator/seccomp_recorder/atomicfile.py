"""Atomic file replacement: readers see the old file or the complete new one, never a part.

Used by the CLI for output files and by the node agent to install profiles, where a
container runtime may read the file at any moment. The data goes to a temporary file in
the same directory (so the rename stays within one filesystem), is flushed to disk, and
is renamed over the target. The directory is then flushed too, so the rename survives a
crash. If anything fails before the rename, the temporary file is removed and the target
is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

DEFAULT_MODE = 0o644  # Profiles are read by the container runtime, which may not run as root.


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str, *, mode: int = DEFAULT_MODE
) -> None:
    """Replace the file at `path` with `data` (str is encoded as UTF-8), with permissions `mode`.

    The file gets exactly `mode`, whatever the umask. Raises OSError when the directory is
    missing or not writable, or when writing, flushing or renaming fails. If the final
    flush of the directory fails, the new file is already in place, but a crash may still
    undo the rename.
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
