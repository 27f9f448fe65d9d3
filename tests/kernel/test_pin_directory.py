"""The recorder's pin directory check on a real bpffs, nested folders that do not exist yet included."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from prerequisites import require
from seccomp_recorder.recorder.recorder import check_pin_directory


@pytest.fixture(name="bpffs")
def bpffs_fixture(tmp_path: Path) -> Iterator[Path]:
    require(os.geteuid() == 0, "mounting a bpffs needs root")
    mount_point = tmp_path / "bpffs"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_missing_nested_folder_on_bpffs_passes(bpffs: Path) -> None:
    # The default layout, <bpffs>/seccomp-recorder/<node>, on a node that never pinned.
    check_pin_directory(bpffs / "seccomp-recorder" / "node-1")


def test_existing_folder_on_bpffs_passes(bpffs: Path) -> None:
    check_pin_directory(bpffs)


def test_folder_off_bpffs_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(OSError) as raised:
        check_pin_directory(tmp_path / "pins" / "node-1")
    assert raised.value.errno == errno.EINVAL
    assert "is not on a BPF filesystem" in str(raised.value)
