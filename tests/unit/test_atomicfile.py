"""Atomic file replacement: a complete new file or the old one, and no temporary left over."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

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
