"""Profile file paths on a node: the layout, name checks, links and localhostProfile values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seccomp_recorder.agent.paths import ProfilePathError, ProfileTree, parse_localhost_profile
from seccomp_recorder.models.names import localhost_profile


@pytest.fixture
def tree(tmp_path: Path) -> ProfileTree:
    return ProfileTree(tmp_path / "kubelet" / "seccomp")


def test_path_follows_layout(tree: ProfileTree) -> None:
    path = tree.path_of("team-a", "web.v2")
    assert path == tree.seccomp_root / "seccomp-recorder" / "team-a" / "web.v2.json"


def test_localhost_profile_matches_path(tree: ProfileTree) -> None:
    value = localhost_profile("team-a", "web")
    assert value == "seccomp-recorder/team-a/web.json"
    assert tree.seccomp_root / value == tree.path_of("team-a", "web")


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("default", ".."),
        ("default", "../../etc/passwd"),
        ("default", "a/b"),
        ("default", "/etc/cron.d/x"),
        ("..", "x"),
        ("a/b", "x"),
        ("default", "x\0y"),
        ("default", ""),
        ("", "x"),
        ("default", "UPPER"),
        ("default", ".hidden"),
        ("default", "a" * 251),
        ("n" * 64, "x"),
    ],
)
def test_malicious_names_rejected(tree: ProfileTree, namespace: str, name: str) -> None:
    with pytest.raises(ProfilePathError):
        tree.path_of(namespace, name)


def test_longest_name_accepted(tree: ProfileTree) -> None:
    assert tree.path_of("default", "a" * 250).name == "a" * 250 + ".json"


def test_symlinked_namespace_folder_rejected(tree: ProfileTree, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tree.root.mkdir(parents=True)
    (tree.root / "default").symlink_to(outside)
    with pytest.raises(ProfilePathError, match="symbolic link"):
        tree.path_of("default", "web")


def test_symlinked_profile_folder_rejected(tree: ProfileTree, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "default").mkdir(parents=True)
    tree.seccomp_root.mkdir(parents=True)
    tree.root.symlink_to(outside)
    with pytest.raises(ProfilePathError, match="symbolic link"):
        tree.path_of("default", "web")


def test_symlinked_file_rejected(tree: ProfileTree, tmp_path: Path) -> None:
    (tree.root / "default").mkdir(parents=True)
    (tree.root / "default" / "web.json").symlink_to(tmp_path / "target")
    with pytest.raises(ProfilePathError, match="symbolic link"):
        tree.path_of("default", "web")


def test_symlinked_seccomp_root_allowed(tmp_path: Path) -> None:
    real = tmp_path / "real-seccomp"
    real.mkdir()
    (tmp_path / "kubelet").mkdir()
    (tmp_path / "kubelet" / "seccomp").symlink_to(real)
    tree = ProfileTree(tmp_path / "kubelet" / "seccomp")
    folder = tree.ensure_folder("default")
    assert folder.is_dir()
    assert (real / "seccomp-recorder" / "default").is_dir()
    assert tree.path_of("default", "web").parent == folder


def test_ensure_folder_creates_mode_0755(tree: ProfileTree) -> None:
    previous = os.umask(0)
    try:
        folder = tree.ensure_folder("default")
    finally:
        os.umask(previous)
    assert folder.stat().st_mode & 0o777 == 0o755


def test_check_inside_rejects_other_depths(tree: ProfileTree) -> None:
    with pytest.raises(ProfilePathError):
        tree.check_inside(tree.root / "web.json")
    with pytest.raises(ProfilePathError):
        tree.check_inside(tree.root / "default" / "sub" / "web.json")


def test_installed_lists_only_profile_files(tree: ProfileTree, tmp_path: Path) -> None:
    folder = tree.ensure_folder("default")
    (folder / "web.json").write_text("{}")
    (folder / "notes.txt").write_text("x")
    (folder / ".web.json.abc.tmp").write_text("x")
    (folder / "Bad_Name.json").write_text("{}")
    (folder / "link.json").symlink_to(tmp_path / "elsewhere")
    (tree.root / "stray.json").write_text("{}")
    assert list(tree.installed()) == [("default", "web")]


def test_temporaries_lists_write_leftovers(tree: ProfileTree) -> None:
    folder = tree.ensure_folder("default")
    (folder / ".web.json.abc.tmp").write_text("x")
    (folder / "web.json").write_text("{}")
    assert list(tree.temporaries()) == [folder / ".web.json.abc.tmp"]


def test_installed_without_tree_is_empty(tree: ProfileTree) -> None:
    assert list(tree.installed()) == []
    assert list(tree.temporaries()) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("seccomp-recorder/ns/p.json", ("ns", "p")),
        ("seccomp-recorder//ns/./p.json", ("ns", "p")),
        ("../seccomp/seccomp-recorder/ns/p.json", ("ns", "p")),
        ("/seccomp-recorder/ns/p.json", ("ns", "p")),
        ("../../seccomp-recorder/ns/p.json", None),
        ("profiles/p.json", None),
        ("seccomp-recorder/ns/p", None),
        ("seccomp-recorder/ns/sub/p.json", None),
        ("seccomp-recorder/NS/p.json", None),
        ("seccomp-recorder/p.json", None),
    ],
)
def test_parse_localhost_profile(value: str, expected: tuple[str, str] | None) -> None:
    assert parse_localhost_profile(value) == expected
