"""The recorder's pin directory check on a real bpffs, nested folders that do not exist yet included."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prerequisites import require
from seccomp_recorder.recorder.recorder import (
    DEFAULT_OBJECT_PATH,
    Mode,
    Recorder,
    check_pin_directory,
)


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


def recorder_program_ids() -> set[int]:
    """Return the ids of loaded BPF programs named like the recorder's sys_enter program."""
    listing = subprocess.run(
        ["bpftool", "prog", "list", "--json"], capture_output=True, text=True, check=True
    )
    return {
        program["id"]
        for program in json.loads(listing.stdout)
        if program.get("name", "").startswith("record_sys_ent")
    }


def test_pins_survive_close_until_unpinned(bpffs: Path) -> None:
    require(DEFAULT_OBJECT_PATH.is_file(), "the BPF object is not built: run `make bpf`")
    before = recorder_program_ids()
    pins = bpffs / "node-1"

    first = Recorder(Mode.ALL_CONTAINERS, pin_directory=pins)
    first.start()
    ours = recorder_program_ids() - before
    first.close()  # an agent that stops while recording keeps its programs attached
    still_attached = recorder_program_ids() & ours

    second = Recorder(Mode.ALL_CONTAINERS, pin_directory=pins)
    second.start()
    resumed = second.resumed
    second.unpin()
    second.close()

    # The kernel frees a released link and its program from deferred work, so wait.
    deadline = time.monotonic() + 30
    while recorder_program_ids() & ours and time.monotonic() < deadline:
        time.sleep(0.05)

    assert len(ours) == 1
    assert still_attached == ours
    assert resumed
    # Unpinned and closed, nothing of the recorder stays loaded.
    assert not (recorder_program_ids() & ours)
    assert not recorder_program_ids() - before
