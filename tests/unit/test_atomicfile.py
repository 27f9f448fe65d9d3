"""Atomic file replacement: a complete new file or the old one, and no temporary left over.

`save_file` also follows symbolic links and keeps the mode and owner, as editors do.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from prerequisites import require
from seccomp_recorder import atomicfile


def test_write_creates_file_with_content(tmp_path: Path) -> None:
    target = tmp_path / "profile.json"
    atomicfile.write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"


def test_write_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "profile.json"
    target.write_text("old")
    atomicfile.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"


def test_write_sets_mode_despite_umask(tmp_path: Path) -> None:
    target = tmp_path / "profile.json"
    previous = os.umask(0o077)
    try:
        atomicfile.write_atomic(target, "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    atomicfile.write_atomic(tmp_path / "profile.json", "x")
    assert [path.name for path in tmp_path.iterdir()] == ["profile.json"]


def test_write_flushes_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flushed: list[bool] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        flushed.append(stat.S_ISDIR(os.fstat(descriptor).st_mode))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    atomicfile.write_atomic(tmp_path / "profile.json", "x")
    assert flushed == [False, True]


@pytest.mark.parametrize("failing", ["fsync", "replace", "fchmod"])
def test_failure_keeps_old_file_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "profile.json"
    target.write_text("old")

    def fail(*args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="Input/output error"):
        atomicfile.write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["profile.json"]


def test_failure_creates_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        atomicfile.write_atomic(tmp_path / "profile.json", "new")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomicfile.write_atomic(tmp_path / "missing" / "profile.json", "x")


def test_directory_as_target_raises_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "profile.json"
    target.mkdir()
    with pytest.raises(OSError):
        atomicfile.write_atomic(target, "x")
    assert [path.name for path in tmp_path.iterdir()] == ["profile.json"]


def test_save_writes_symlink_target(tmp_path: Path) -> None:
    target = tmp_path / "profiles" / "web.yaml"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.yaml"
    link.symlink_to("profiles/web.yaml")

    atomicfile.save_file(link, "new")

    assert link.is_symlink()
    assert os.readlink(link) == "profiles/web.yaml"
    assert target.read_text() == "new"
    assert sorted(path.name for path in target.parent.iterdir()) == ["web.yaml"]


def test_save_follows_chain_of_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text("old")
    (tmp_path / "middle.yaml").symlink_to(target)
    (tmp_path / "first.yaml").symlink_to("middle.yaml")

    atomicfile.save_file(tmp_path / "first.yaml", "new")

    assert (tmp_path / "first.yaml").is_symlink()
    assert (tmp_path / "middle.yaml").is_symlink()
    assert target.read_text() == "new"


def test_save_creates_dangling_symlink_target(tmp_path: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to("created.yaml")

    atomicfile.save_file(link, "new")

    assert link.is_symlink()
    assert (tmp_path / "created.yaml").read_text() == "new"
    assert stat.S_IMODE((tmp_path / "created.yaml").stat().st_mode) == atomicfile.DEFAULT_MODE


def test_save_rejects_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")

    with pytest.raises(OSError) as caught:
        atomicfile.save_file(tmp_path / "a.yaml", "new")

    assert caught.value.errno == errno.ELOOP
    assert (tmp_path / "a.yaml").is_symlink()


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_save_keeps_existing_mode(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "profile.yaml"
    target.write_text("old")
    target.chmod(mode)

    atomicfile.save_file(target, "new")

    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_save_new_file_gets_default_mode(tmp_path: Path) -> None:
    target = tmp_path / "profile.yaml"

    atomicfile.save_file(target, "new")

    assert stat.S_IMODE(target.stat().st_mode) == atomicfile.DEFAULT_MODE


def test_save_keeps_owner_as_root(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "giving a file to another user needs root")
    target = tmp_path / "profile.yaml"
    target.write_text("old")
    os.chown(target, 65534, 65534)

    atomicfile.save_file(target, "new")

    assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)


def test_save_writes_device_in_place() -> None:
    atomicfile.save_file("/dev/null", "new")

    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_save_writes_fifo_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "profile.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()

    atomicfile.save_file(fifo, "new")
    reader.join(timeout=10)

    assert received == [b"new"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_save_rejects_directory(tmp_path: Path) -> None:
    target = tmp_path / "profile.yaml"
    target.mkdir()

    with pytest.raises(IsADirectoryError):
        atomicfile.save_file(target, "new")

    assert [path.name for path in tmp_path.iterdir()] == ["profile.yaml"]
